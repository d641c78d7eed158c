//go:build race

package evaluation

// raceEnabled: the race detector's shadow memory makes the resident set
// several times the Go heap, so memory tests measure the heap instead.
const raceEnabled = true
