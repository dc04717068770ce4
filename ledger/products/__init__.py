"""The four businesses (payments, factoring, consumer credit, fund): they post through the core."""
