package ledger

// KeyRecheck is keyRecheck, for the external tests.
const KeyRecheck = keyRecheck
