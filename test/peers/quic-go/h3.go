// HTTP/3 modes of the quic-go peer (quic-go's http3 package, ALPN h3):
//
//	h3-server -addr 127.0.0.1:0 -cert server.pem -key server-key.pem [-duration 60s]
//	h3-client -addr 127.0.0.1:PORT -ca ca.pem [-n 5] [-size 1024]
//
// GET /bytes/N answers N bytes of a fixed pattern (byte i is (i*31+7) mod 256), which both sides
// can check without sending a digest. The server prints one line per request,
// {"request","resumed","used0rtt"}; the client one line per connection, {"i","status","bytes",
// "ok","resumed","used0rtt"}, each connection resuming from the newest ticket and sending its GET as
// 0-RTT (http3.MethodGet0RTT). Bounded: -n connections, -timeout each, -duration for the server.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

func patternByte(i int) byte { return byte((i*31 + 7) & 255) }

type connKey struct{}

func runH3Server(args []string) {
	fs := flag.NewFlagSet("h3-server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "UDP address to listen on (port 0: any free port)")
	certFile := fs.String("cert", "", "server certificate chain (PEM)")
	keyFile := fs.String("key", "", "server private key (PEM)")
	duration := fs.Duration("duration", time.Minute, "exit after this long")
	fs.Parse(args)
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fatalf("h3-server: loading cert/key: %v", err)
	}
	tlsConf := http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	ln, err := quic.ListenAddrEarly(*addr, tlsConf, &quic.Config{Allow0RTT: true, MaxIdleTimeout: 30 * time.Second})
	if err != nil {
		fatalf("h3-server: listen %s: %v", *addr, err)
	}
	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes/", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/"))
		if err != nil || n < 0 || n > 64<<20 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		report := map[string]any{"request": requests.Add(1)}
		if conn, ok := r.Context().Value(connKey{}).(quic.EarlyConnection); ok {
			select {
			case <-conn.HandshakeComplete():
				state := conn.ConnectionState()
				report["resumed"] = state.TLS.DidResume
				report["used0rtt"] = state.Used0RTT
			case <-time.After(10 * time.Second):
				report["error"] = "handshake timeout"
			}
		}
		emit(report)
		w.Header().Set("content-length", strconv.Itoa(n))
		buf := make([]byte, 16*1024)
		for sent := 0; sent < n; {
			chunk := min(len(buf), n-sent)
			for i := 0; i < chunk; i++ {
				buf[i] = patternByte(sent + i)
			}
			if _, err := w.Write(buf[:chunk]); err != nil {
				return
			}
			sent += chunk
		}
	})
	server := &http3.Server{
		Handler:     mux,
		TLSConfig:   tlsConf,
		ConnContext: func(ctx context.Context, c quic.Connection) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	emit(map[string]any{"listening": ln.Addr().String()})
	go func() {
		time.Sleep(*duration)
		server.Close()
		ln.Close()
	}()
	server.ServeListener(ln)
}

func runH3Client(args []string) {
	fs := flag.NewFlagSet("h3-client", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:4433", "server UDP address")
	caFile := fs.String("ca", "", "CA certificate (PEM)")
	servername := fs.String("servername", "localhost", "SNI and name to verify")
	n := fs.Int("n", 5, "connections (the first full, the rest resumed with a 0-RTT GET)")
	size := fs.Int("size", 1024, "response bytes to ask for")
	timeout := fs.Duration("timeout", 10*time.Second, "limit for one connection")
	fs.Parse(args)
	if *n < 1 || *n > 10000 {
		fatalf("h3-client: -n must be 1..10000")
	}
	roots := rootsFrom("h3-client", *caFile)
	cache := &noticingCache{inner: tls.NewLRUClientSessionCache(8), puts: make(chan struct{}, 16)}
	failed := 0
	for i := 0; i < *n; i++ {
		report := map[string]any{"i": i}
		var conn quic.EarlyConnection
		cache.drain()
		rt := &http3.RoundTripper{
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: *servername, ClientSessionCache: cache, MinVersion: tls.VersionTLS13},
			QUICConfig:      &quic.Config{MaxIdleTimeout: 30 * time.Second},
			Dial: func(ctx context.Context, a string, tlsCfg *tls.Config, cfg *quic.Config) (quic.EarlyConnection, error) {
				c, err := quic.DialAddrEarly(ctx, a, tlsCfg, cfg)
				conn = c
				return c, err
			},
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		req, _ := http.NewRequestWithContext(ctx, http3.MethodGet0RTT, fmt.Sprintf("https://%s/bytes/%d", *addr, *size), nil)
		resp, err := rt.RoundTrip(req)
		ok := false
		if err != nil {
			report["error"] = err.Error()
		} else {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			report["status"] = resp.StatusCode
			report["bytes"] = len(body)
			ok = err == nil && resp.StatusCode == 200 && len(body) == *size
			for j := 0; ok && j < len(body); j++ {
				ok = body[j] == patternByte(j)
			}
			if err != nil {
				report["error"] = err.Error()
			}
		}
		if conn != nil {
			state := conn.ConnectionState()
			report["resumed"] = state.TLS.DidResume
			report["used0rtt"] = state.Used0RTT
			// Keep the connection until its ticket arrived, so the next one can resume.
			select {
			case <-cache.puts:
			case <-time.After(2 * time.Second):
			}
		}
		report["ok"] = ok
		if !ok {
			failed++
		}
		emit(report)
		rt.Close()
		cancel()
	}
	emit(map[string]any{"summary": true, "connections": *n, "failed": failed})
	if failed > 0 {
		os.Exit(1)
	}
}
