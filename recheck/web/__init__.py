"""The pages: uncategorized failures and bug trends, static (``recheck report``) or live
(``recheck serve``), from the store's builds and matches."""
