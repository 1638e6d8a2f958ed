def get_assert(output, context):
    return {"pass": context["vars"]["topic"] in output, "score": 1.0, "reason": "topic named"}
