"""A failed build against passing builds of its job: the lines only it has, ranked into
events, and signatures drafted from them (``recheck draft``; ``draft.draft``)."""
