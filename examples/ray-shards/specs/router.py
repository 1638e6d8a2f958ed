"""The system under test: a keyword router (stands in for your model, agent or pipeline)."""

#: The first router: a few words per queue.
FEW = {"billing": ("charged", "refund"), "technical": ("crash", "error"), "account": ("log in", "password")}
#: The improved router: the words the first one missed.
MORE = {
    "billing": ("charged", "refund", "invoice", "card", "pay"),
    "technical": ("crash", "error", "load", "sync", "broken"),
    "account": ("log in", "password", "email", "delete", "profile"),
}


def route(case, params):
    """The queue of the ticket: the first queue one of whose words it contains."""
    words = MORE if params.get("words") == "more" else FEW
    text = case["ticket"].lower()
    return next((queue for queue, keys in words.items() if any(k in text for k in keys)), "unknown")
