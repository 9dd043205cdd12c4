"""One verb-named function per business action. Each composes the models, the lifecycle and the
queue, and owns the one commit of its action; views call these and never commit."""
