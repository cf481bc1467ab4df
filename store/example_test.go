package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
)

// A session directory shared with Python's session3.DirectorySessionStore: a session
// saved here is the file session3 reads, under the same locks, and the other way
// round.
func ExampleOpen() {
	tmp, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	d, err := store.Open(filepath.Join(tmp, "sessions"), store.WithCreate()) // created if missing
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	s := quixote.NewSession(quixote.Session3Class, "203.0.113.7", time.Unix(1795305578, 0))
	_ = s.SetUser("ann")
	data, err := s.Encode() // the pickle session3 would write
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Save(ctx, "KyPJ1fkwwK8", data); err != nil { // the session id is the file name
		log.Fatal(err)
	}

	ids, err := d.IDs(ctx)
	if err != nil {
		log.Fatal(err)
	}
	loaded, err := d.Load(ctx, "KyPJ1fkwwK8")
	if err != nil {
		log.Fatal(err)
	}
	again, err := quixote.Decode(loaded)
	if err != nil {
		log.Fatal(err)
	}
	user, _ := again.UserString()
	_, err = d.Load(ctx, "nosuchsess1")
	fmt.Println(ids, user, errors.Is(err, store.ErrNotFound))
	// Output:
	// [KyPJ1fkwwK8] ann true
}

// Saving small sessions in place: the second save writes over the file the first
// one made. A shorter session leaves the end of the longer one after its STOP (the
// file starts with the new session), which Quixote's and Go's decoders never read.
func ExampleWithInPlace() {
	tmp, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	d, err := store.Open(tmp, store.WithInPlace())
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	s := quixote.NewSession(quixote.Session3Class, "203.0.113.7", time.Unix(1795305578, 0))
	_ = s.SetUser("a-rather-long-user-name")
	long, err := s.Encode()
	if err != nil {
		log.Fatal(err)
	}
	_ = s.SetUser("ann")
	short, err := s.Encode()
	if err != nil {
		log.Fatal(err)
	}
	for _, data := range [][]byte{long, short} { // a new session, then an overwrite
		if err := d.Save(ctx, "KyPJ1fkwwK8", data); err != nil {
			log.Fatal(err)
		}
	}
	loaded, err := d.Load(ctx, "KyPJ1fkwwK8")
	if err != nil {
		log.Fatal(err)
	}
	again, err := quixote.Decode(loaded)
	if err != nil {
		log.Fatal(err)
	}
	user, _ := again.UserString()
	fmt.Println(user, bytes.HasPrefix(loaded, short))
	// Output:
	// ann true
}
