package migrate_test

import (
	"context"
	"log"

	"github.com/qxbridge/qxbridge/store"
	"github.com/qxbridge/qxbridge/store/migrate"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// Moving a deployment's sessions from its session directory into PostgreSQL. Run it
// again after an interruption: what is copied already is left alone.
func ExampleCopy() {
	ctx := context.Background()
	from, err := store.Open("/var/lib/app/sessions")
	if err != nil {
		log.Fatal(err)
	}
	to, err := pgstore.Open(ctx, "postgres://app@db.example/app")
	if err != nil {
		log.Fatal(err)
	}
	defer to.Close()
	counts, err := migrate.Copy(ctx, from, to, migrate.Options{})
	log.Printf("sessions: %v", counts)
	if err != nil {
		log.Fatal(err)
	}
}
