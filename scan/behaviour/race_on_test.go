//go:build race

package behaviour

// raceEnabled shrinks the long randomized tests under the race detector, which makes them
// about ten times slower.
const raceEnabled = true
