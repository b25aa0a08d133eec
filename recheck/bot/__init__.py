"""The long-running bot: failure events in, Gerrit comments and IRC messages out.

Nothing outside ``recheck.bot`` opens sockets to Gerrit or IRC.
"""
