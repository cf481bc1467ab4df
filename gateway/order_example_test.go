package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/qxbridge/qxbridge/gateway"
)

// A program that changes sessions outside the gateway (a script, a cron job written
// in Go) takes each session's turn through the gateways' lock directory, as the
// sessions administration commands do, so that no request in flight saves an older
// copy over its change.
func ExampleLockDir() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	sessions := filepath.Join(dir, "sessions")

	// The gateway's default lock directory for -sessions DIR is DIR + ".locks".
	locks, err := gateway.OpenLockDir(sessions+".locks", sessions)
	if err != nil {
		fmt.Println(err)
		return
	}
	unlock, err := locks.Lock(context.Background(), "jR1dYl2Q-0g")
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... load, change and save session jR1dYl2Q-0g ...
	unlock()
	fmt.Println("done")
	// Output: done
}
