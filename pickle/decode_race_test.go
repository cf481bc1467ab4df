//go:build race

package pickle

// raceEnabled is set under -race, where sync.Pool drops pooled decoder state at random
// and allocation counts are higher.
const raceEnabled = true
