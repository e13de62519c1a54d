"""All SQL, one module per aggregate. Each state change is written by one function here, which asks a rule in
`hub.rules` what follows and applies it in one transaction, audited."""
