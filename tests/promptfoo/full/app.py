async def answer(prompt, options, context):
    return {"output": prompt}
