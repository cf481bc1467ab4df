package gateway_test

import (
	"context"
	"log"

	"github.com/qxbridge/qxbridge/gateway"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// A program that brings its own session store, here PostgreSQL with options of its
// choosing, sets Gateway.Store before Main or Open; the flags' -sessions is then not
// used. (Without code, -sessions postgres://… does the same with the defaults.) The
// store orders the gateways of every host sharing it, since *pgstore.Store is a
// gateway.SessionLocker.
func ExampleGateway_Store() {
	st, err := pgstore.Open(context.Background(), "postgres://myapp@db.example/myapp",
		pgstore.WithTable("myapp_sessions"), pgstore.WithLockConns(128))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	g := gateway.New()
	g.Store = st
	g.Main()
}
