# No inputs: the policy follows from the account, partition and region the provider is configured for.
