"""Who is posting: users, their roles on sites, API tokens (and, later, sign-in)."""
