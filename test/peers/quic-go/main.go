// quic-go interop peer for quicket: an echo server and a resuming 0-RTT client, ALPN "echo".
//
// Written against quic-go's public API (v0.46, github.com/quic-go/quic-go) and Go's crypto/tls.
// Every loop is bounded in count and time; the program only talks to the address it is given.
//
//	server -addr 127.0.0.1:4433 -cert server.pem -key server-key.pem [-duration 10m] [-max-conns 0]
//	client -addr 127.0.0.1:4433 -ca ca.pem [-n 50] [-gap-max-ms 1500] [-size 1024]
//
// Output is one JSON object a line on stdout; diagnostics go to stderr.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
)

const alpn = "echo"

var stdoutMu sync.Mutex

func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "json:", err)
		return
	}
	stdoutMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	stdoutMu.Unlock()
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "quic-go-peer: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: quic-go-peer server|client|h3-server|h3-client [flags]  (-h for flags)")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		runServer(os.Args[2:])
	case "client":
		runClient(os.Args[2:])
	case "h3-server":
		runH3Server(os.Args[2:])
	case "h3-client":
		runH3Client(os.Args[2:])
	default:
		fatalf("unknown mode %q (want server, client, h3-server or h3-client)", os.Args[1])
	}
}

// ---- server ---------------------------------------------------------------------------------

type serverConnReport struct {
	Conn      int64  `json:"conn"`
	Resumed   bool   `json:"resumed"`
	EarlyData bool   `json:"earlyData"`
	Error     string `json:"error,omitempty"`
}

func runServer(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:4433", "UDP address to listen on (port 0: any free port)")
	certFile := fs.String("cert", "", "server certificate chain (PEM)")
	keyFile := fs.String("key", "", "server private key (PEM)")
	duration := fs.Duration("duration", 10*time.Minute, "exit after this long")
	maxConns := fs.Int64("max-conns", 0, "exit after this many connections have finished their handshake (0: no limit)")
	no0rtt := fs.Bool("no-0rtt", false, "refuse 0-RTT (tickets then carry no early-data permission)")
	rotateAfter := fs.Int64("rotate-after", 0, "replace the session ticket key once this many connections have ended (0: never)")
	fs.Parse(args)
	if *certFile == "" || *keyFile == "" {
		fatalf("server: -cert and -key are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fatalf("server: loading cert/key: %v", err)
	}
	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{alpn},
		MinVersion:   tls.VersionTLS13,
	}
	quicConf := &quic.Config{
		Allow0RTT:      !*no0rtt,
		MaxIdleTimeout: 30 * time.Second,
	}
	ln, err := quic.ListenAddrEarly(*addr, tlsConf, quicConf)
	if err != nil {
		fatalf("server: listen %s: %v", *addr, err)
	}
	emit(map[string]any{"listening": ln.Addr().String()})

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	var seq, handshakes, resumed, early, failed atomic.Int64
	var wg sync.WaitGroup
	for ctx.Err() == nil {
		conn, err := ln.Accept(ctx)
		if err != nil {
			break
		}
		id := seq.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			report := serveConn(ctx, conn, id)
			if report.Error != "" {
				failed.Add(1)
			} else {
				handshakes.Add(1)
				if report.Resumed {
					resumed.Add(1)
				}
				if report.EarlyData {
					early.Add(1)
				}
			}
			emit(report)
			if *rotateAfter > 0 && handshakes.Load()+failed.Load() == *rotateAfter {
				// Tickets issued so far can no longer be opened: their holders get a full handshake.
				var key [32]byte
				rand.Read(key[:])
				tlsConf.SetSessionTicketKeys([][32]byte{key})
				emit(map[string]any{"rotated": true})
			}
			if *maxConns > 0 && handshakes.Load()+failed.Load() >= *maxConns {
				cancel()
			}
		}()
	}
	ln.Close()
	wg.Wait()
	emit(map[string]any{"summary": true, "connections": seq.Load(), "handshakes": handshakes.Load(),
		"resumed": resumed.Load(), "earlyData": early.Load(), "failed": failed.Load()})
}

// serveConn echoes every bidirectional stream of conn (then ends it) and reports the handshake.
func serveConn(ctx context.Context, conn quic.EarlyConnection, id int64) serverConnReport {
	report := serverConnReport{Conn: id}
	go func() {
		// Bounded: one goroutine per stream, until the connection or the server ends.
		for {
			stream, err := conn.AcceptStream(conn.Context())
			if err != nil {
				return
			}
			go func() {
				defer stream.Close()
				if _, err := io.Copy(stream, stream); err != nil {
					stream.CancelWrite(1)
				}
			}()
		}
	}()
	hsCtx, hsCancel := context.WithTimeout(ctx, 10*time.Second)
	defer hsCancel()
	select {
	case <-conn.HandshakeComplete():
	case <-conn.Context().Done():
		report.Error = "handshake: " + context.Cause(conn.Context()).Error()
		return report
	case <-hsCtx.Done():
		report.Error = "handshake timeout"
		conn.CloseWithError(1, "handshake timeout")
		return report
	}
	state := conn.ConnectionState()
	report.Resumed = state.TLS.DidResume
	report.EarlyData = state.Used0RTT
	return report
}

// ---- client ---------------------------------------------------------------------------------

// rootsFrom reads the CA to verify servers with; with no file, the system's roots.
func rootsFrom(mode, caFile string) *x509.CertPool {
	if caFile == "" {
		sys, err := x509.SystemCertPool()
		if err != nil {
			fatalf("%s: system roots: %v", mode, err)
		}
		return sys
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fatalf("%s: %v", mode, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fatalf("%s: no certificate in %s", mode, caFile)
	}
	return roots
}

// noticingCache wraps Go's LRU session cache: it tells when a new ticket arrives and what the
// cached session allowed when a connection looked it up.
type noticingCache struct {
	inner   tls.ClientSessionCache
	puts    chan struct{}
	mu      sync.Mutex
	lastHit bool
	lastEDa bool
}

func (c *noticingCache) Get(key string) (*tls.ClientSessionState, bool) {
	cs, ok := c.inner.Get(key)
	c.mu.Lock()
	c.lastHit = ok && cs != nil
	c.lastEDa = false
	if c.lastHit {
		if _, state, err := cs.ResumptionState(); err == nil && state != nil {
			c.lastEDa = state.EarlyData
		}
	}
	c.mu.Unlock()
	return cs, ok
}

func (c *noticingCache) Put(key string, cs *tls.ClientSessionState) {
	c.inner.Put(key, cs)
	if cs != nil {
		select {
		case c.puts <- struct{}{}:
		default:
		}
	}
}

func (c *noticingCache) lookup() (hit, earlyData bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastHit, c.lastEDa
}

func (c *noticingCache) drain() {
	for {
		select {
		case <-c.puts:
		default:
			return
		}
	}
}

type clientConnReport struct {
	I             int     `json:"i"`
	Resumed       bool    `json:"resumed"`
	Used0RTT      bool    `json:"used0rtt"`
	OK            bool    `json:"ok"`
	Cached        bool    `json:"cached"`          // a session was in the cache for this connection
	TicketAllowed bool    `json:"ticket0rtt"`      // that session allowed 0-RTT
	Rejected0RTT  bool    `json:"rejected0rtt"`    // the server refused our 0-RTT; data was resent
	GotTicket     bool    `json:"gotTicket"`       // a new ticket arrived before we closed
	GapMs         int64   `json:"gapMs"`           // pause before this connection
	Ms            float64 `json:"ms"`              // dial to verified echo
	Error         string  `json:"error,omitempty"` // why ok is false
}

func runClient(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:4433", "server UDP address")
	caFile := fs.String("ca", "", "CA certificate (PEM) to verify the server with")
	servername := fs.String("servername", "localhost", "SNI and name to verify")
	n := fs.Int("n", 10, "connections to make (the first is a full handshake, the rest resume)")
	gapMin := fs.Int("gap-min-ms", 0, "smallest random pause between connections (ms)")
	gapMax := fs.Int("gap-max-ms", 1000, "largest random pause between connections (ms)")
	size := fs.Int("size", 1024, "message bytes per connection")
	timeout := fs.Duration("timeout", 10*time.Second, "limit for one connection")
	ticketWait := fs.Duration("ticket-wait", 2*time.Second, "how long to wait for a new ticket before closing a connection")
	seed := fs.Int64("seed", 0, "random seed for the gaps (0: from the clock)")
	fs.Parse(args)
	if *n < 1 || *n > 100000 {
		fatalf("client: -n must be 1..100000")
	}
	if *gapMin < 0 || *gapMax < *gapMin || *gapMax > 600000 {
		fatalf("client: need 0 <= -gap-min-ms <= -gap-max-ms <= 600000")
	}
	if *size < 0 || *size > 64<<20 {
		fatalf("client: -size must be 0..64 MiB")
	}
	roots := rootsFrom("client", *caFile)
	cache := &noticingCache{inner: tls.NewLRUClientSessionCache(16), puts: make(chan struct{}, 16)}
	tlsConf := &tls.Config{
		RootCAs:            roots,
		ServerName:         *servername,
		NextProtos:         []string{alpn},
		MinVersion:         tls.VersionTLS13,
		ClientSessionCache: cache,
	}
	quicConf := &quic.Config{MaxIdleTimeout: 30 * time.Second, HandshakeIdleTimeout: 5 * time.Second}
	if *seed == 0 {
		*seed = time.Now().UnixNano()
	}
	rng := mrand.New(mrand.NewSource(*seed))

	var okCount, resumedCount, zeroRTT, cachedCount, ticket0rtt, rejected, failed int
	for i := 0; i < *n; i++ {
		var gap time.Duration
		if i > 0 {
			gap = time.Duration(*gapMin+rng.Intn(*gapMax-*gapMin+1)) * time.Millisecond
			time.Sleep(gap)
		}
		report := oneConnection(i, *addr, tlsConf, quicConf, cache, *size, *timeout, *ticketWait)
		report.GapMs = gap.Milliseconds()
		emit(report)
		if report.OK {
			okCount++
		} else {
			failed++
		}
		if report.Resumed {
			resumedCount++
		}
		if report.Used0RTT {
			zeroRTT++
		}
		if report.Cached {
			cachedCount++
		}
		if report.TicketAllowed {
			ticket0rtt++
		}
		if report.Rejected0RTT {
			rejected++
		}
	}
	emit(map[string]any{"summary": true, "n": *n, "ok": okCount, "failed": failed, "resumed": resumedCount,
		"used0rtt": zeroRTT, "cached": cachedCount, "ticket0rtt": ticket0rtt, "rejected0rtt": rejected, "seed": *seed})
	if failed > 0 {
		os.Exit(1)
	}
}

func oneConnection(i int, addr string, tlsConf *tls.Config, quicConf *quic.Config, cache *noticingCache, size int,
	timeout, ticketWait time.Duration) (report clientConnReport) {
	report.I = i
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	message := make([]byte, size)
	if _, err := rand.Read(message); err != nil {
		report.Error = "rand: " + err.Error()
		return report
	}
	cache.drain()
	start := time.Now()
	conn, err := quic.DialAddrEarly(ctx, addr, tlsConf, quicConf)
	report.Cached, report.TicketAllowed = cache.lookup()
	if err != nil {
		report.Error = "dial: " + err.Error()
		return report
	}
	defer conn.CloseWithError(0, "")

	// Returns as soon as 0-RTT keys exist (resumption) or the handshake is done: the stream
	// opened here carries the message in 0-RTT packets when a ticket allows it.
	echo, err := exchange(ctx, conn, message)
	if errors.Is(err, quic.Err0RTTRejected) {
		report.Rejected0RTT = true
		next, nerr := conn.NextConnection(ctx)
		if nerr != nil {
			report.Error = "after 0-RTT rejection: " + nerr.Error()
			return report
		}
		echo, err = exchange(ctx, next, message)
	}
	if err != nil {
		report.Error = "echo: " + err.Error()
		return report
	}
	select {
	case <-conn.HandshakeComplete():
	case <-conn.Context().Done():
		report.Error = "handshake: " + context.Cause(conn.Context()).Error()
		return report
	case <-ctx.Done():
		report.Error = "handshake: " + context.Cause(ctx).Error()
		return report
	}
	report.Ms = float64(time.Since(start).Microseconds()) / 1000
	state := conn.ConnectionState()
	report.Resumed = state.TLS.DidResume
	report.Used0RTT = state.Used0RTT
	if !bytes.Equal(echo, message) {
		report.Error = fmt.Sprintf("echo mismatch: sent %d bytes, got %d", len(message), len(echo))
		return report
	}
	report.OK = true
	// Keep the connection until the server's NewSessionTicket arrives, so the next one resumes.
	wait := time.NewTimer(ticketWait)
	defer wait.Stop()
	select {
	case <-cache.puts:
		report.GotTicket = true
	case <-wait.C:
	case <-conn.Context().Done():
	}
	return report
}

type streamConn interface {
	OpenStream() (quic.Stream, error)
}

// exchange sends message on a new bidirectional stream, ends it, and reads the whole reply.
func exchange(ctx context.Context, conn streamConn, message []byte) ([]byte, error) {
	stream, err := conn.OpenStream()
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		stream.SetDeadline(deadline)
	}
	writeErr := make(chan error, 1)
	go func() {
		_, err := stream.Write(message)
		if cerr := stream.Close(); err == nil {
			err = cerr
		}
		writeErr <- err
	}()
	echo, rerr := io.ReadAll(stream)
	werr := <-writeErr
	if rerr != nil {
		return echo, rerr
	}
	return echo, werr
}
