package gateway

import (
	"context"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
)

// sweepInterval is how often the idle sweep runs for a -max-idle of d: a quarter of
// it, so a session is gone at most 25% after its limit, between a second and an hour.
func sweepInterval(d time.Duration) time.Duration {
	return min(max(d/4, time.Second), time.Hour)
}

// sweepLoop runs the idle sweep (-max-idle) at start-up and then periodically, until
// ctx is done. It does what session3's delete_old_sessions does for the whole
// store; in a session directory it also removes the zero-length files left by
// crashed Python writers, on which session3's readers would spin for ever (see
// store.Directory.DeleteIdle).
func (g *Gateway) sweepLoop(ctx context.Context, st quixote.IterableStore, maxIdle time.Duration) {
	if maxIdle <= 0 {
		return
	}
	t := time.NewTicker(sweepInterval(maxIdle))
	defer t.Stop()
	for {
		g.sweepOnce(st, maxIdle)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gateway) sweepOnce(st quixote.IterableStore, maxIdle time.Duration) {
	deleted, remaining, err := st.DeleteIdle(maxIdle)
	g.metrics.sweepDone(deleted, remaining, err, time.Now())
	switch {
	case err != nil:
		g.log().Error("idle sweep failed", "store", describeStore(st), "error", err, "deleted", deleted)
	case deleted > 0:
		g.log().Info("idle sweep", "deleted", deleted, "remaining", remaining, "max_idle", maxIdle)
	default:
		g.log().Debug("idle sweep", "deleted", deleted, "remaining", remaining, "max_idle", maxIdle)
	}
}
