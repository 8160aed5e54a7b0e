package zkrules

import (
	"context"
	"strconv"
	"testing"

	"github.com/lodestar-lb/lodestar/discovery"
	"github.com/lodestar-lb/lodestar/internal/zktest"
)

// BenchmarkPutToSink measures a rule change end to end: Put on one Source, until another
// Source's Run has sent the new set to its sink (ZooKeeper write, watch, read, send).
func BenchmarkPutToSink(b *testing.B) {
	srv := zktest.Shared(b)
	url := srv.URL(testPath(b))
	writer, _ := newSource(b, url)
	watcher, _ := newSource(b, url)
	sink := run(b, watcher)
	ctx := context.Background()
	if err := sink.wait(waitCtx(b), func(sent []map[string]discovery.ServiceRule) bool { return len(sent) > 0 }); err != nil {
		b.Fatalf("no first read: %v", err)
	}
	b.ResetTimer()
	for i := range b.N {
		acl := "hdr(host) -i app" + strconv.Itoa(i) + ".example"
		if err := writer.Put(ctx, rule("/bench/app", acl)); err != nil {
			b.Fatal(err)
		}
		err := sink.wait(ctx, func(sent []map[string]discovery.ServiceRule) bool {
			n := len(sent)
			return n > 0 && sent[n-1]["/bench/app"].ACL == acl
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
