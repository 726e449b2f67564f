// Command peer is the Go peer of demo-server in the benchmarks of bench/: a net/http
// "Hello, World!" server, or an httputil.ReverseProxy with or without a BufferPool.
// Standard library only; bench/ runs it with GOMAXPROCS=1.
//
//	peer -addr 127.0.0.1:18080                                   # hello server
//	peer -addr 127.0.0.1:18082 -upstream 127.0.0.1:18081         # reverse proxy
//	peer -addr 127.0.0.1:18082 -upstream 127.0.0.1:18081 -buffer-pool
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
)

var hello = []byte("Hello, World!")

// bufferPool hands ReverseProxy 32 KiB copy buffers from a sync.Pool, the usual
// httputil.BufferPool; without it ReverseProxy allocates one per request.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return make([]byte, 32*1024) }}}
}

func (b *bufferPool) Get() []byte  { return b.pool.Get().([]byte) }
func (b *bufferPool) Put(p []byte) { b.pool.Put(p) }

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "address to listen on")
	upstream := flag.String("upstream", "", "proxy to this host:port instead of serving hello")
	pooled := flag.Bool("buffer-pool", false, "give the reverse proxy a BufferPool")
	flag.Parse()

	var handler http.Handler
	if *upstream == "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(hello)
		})
	} else {
		target, err := url.Parse("http://" + *upstream)
		if err != nil {
			log.Fatalf("peer: -upstream: %v", err)
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		transport := http.DefaultTransport.(*http.Transport).Clone()
		// Keep as many idle upstream connections as nginx's `keepalive 64`
		// (the default of 2 per host would reconnect under load).
		transport.MaxIdleConns = 64
		transport.MaxIdleConnsPerHost = 64
		proxy.Transport = transport
		if *pooled {
			proxy.BufferPool = newBufferPool()
		}
		handler = proxy
	}
	log.Printf("peer: listening on http://%s (upstream %q, buffer pool %v)", *addr, *upstream, *pooled)
	log.Fatal((&http.Server{Addr: *addr, Handler: handler}).ListenAndServe())
}
