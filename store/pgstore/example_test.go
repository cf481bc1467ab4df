package pgstore_test

import (
	"context"
	"log"
	"net/http"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// Sessions in PostgreSQL behind quixote.Manager, with the user of each session
// stored beside it for finding a user's sessions (UserIDs).
func ExampleOpen() {
	ctx := context.Background()
	s, err := pgstore.Open(ctx, "postgres://app@db.example/app",
		pgstore.WithMeta(func(id string, data []byte) pgstore.Meta {
			sess, err := quixote.Decode(data)
			if err != nil {
				return pgstore.Meta{}
			}
			user, _ := sess.UserString()
			return pgstore.Meta{User: user, Created: sess.CreationTime(), Accessed: sess.AccessTime()}
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	m := quixote.NewManager(s)
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", m.Handler(http.NotFoundHandler())))
}
