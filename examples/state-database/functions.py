"""The function of the state-database walkthrough: it counts a user's visits.

``example/user`` keeps ``visits`` (an int) and ``profile`` (JSON); its initial state comes from
``users.csv`` through ``pystatefun bootstrap``, and each visit adds one. It runs embedded.
"""

from pystatefun.sdk import Context, IntType, Message, StatefulFunctions, ValueSpec, make_json_type

PROFILE = make_json_type("example/Profile")
functions = StatefulFunctions()


@functions.bind("example/user", specs=[ValueSpec("visits", IntType), ValueSpec("profile", PROFILE)])
def user(context: Context, message: Message) -> None:
    """One more visit of ``context.address.id``."""
    context.storage.visits = (context.storage.visits or 0) + 1
    if context.storage.profile is None:
        context.storage.profile = {"tier": "new", "since": 2026}
