def call_api(prompt, options, context):
    return {"output": "What: the capital of " + context["vars"]["country"] + " is its capital city"}
