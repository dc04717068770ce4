"""The idle-funds yield product in GraphQL: funds, holdings, subscriptions, redemptions, income."""
