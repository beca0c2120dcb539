//go:build race

package scan

// raceEnabled is true under the race detector, which makes the big corpus tests ten times
// slower; they then run a reduced corpus unless COMMSEAL_SLOW=1.
const raceEnabled = true
