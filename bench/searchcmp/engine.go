package main

import "context"

// pageSize is how many hits the timed query returns, besides the total count.
const pageSize = 100

// engine is one index under comparison. Message i of the corpus has text texts[i].
type engine interface {
	name() string
	// build indexes the texts; it is what the build time measures.
	build(ctx context.Context, texts []string) error
	// top answers q the way a user asks: the number of hits and the first page of them. It is
	// what the query times measure.
	top(ctx context.Context, q query) (int, error)
	// all returns every hit of q as message numbers (not timed).
	all(ctx context.Context, q query) ([]int, error)
	// notes says what else the engine measured (sizes, preparation), after build.
	notes() string
	close() error
}

// preparer is an engine with work to do before build that the build time does not include
// (commseal: appending the messages to a ledger).
type preparer interface {
	prepare(ctx context.Context, texts []string) error
}
