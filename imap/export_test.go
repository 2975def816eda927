package imap

// The wire codec's predicates, for the invariants of the external tests.
var (
	IsAtom   = isAtom
	ValidTag = isTag
)
