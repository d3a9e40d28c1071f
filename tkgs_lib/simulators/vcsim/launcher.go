// Launcher for govmomi's vCenter simulator, built by tkgs_lib/simulators/vcsim.py.
// Prints "VCSIM_READY <url>" on stdout once serving, then runs until SIGINT/SIGTERM
// (or, with -exit-on-eof, until stdin closes, so it dies with its parent).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"

	// Registered through init(): REST (vAPI), storage policies, namespaces.
	_ "github.com/vmware/govmomi/pbm/simulator"
	_ "github.com/vmware/govmomi/vapi/namespace/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on (port 0 picks a free one)")
	username := flag.String("username", "administrator@vsphere.local", "SOAP login user")
	password := flag.String("password", "", "SOAP login password (prefer env VCSIM_PASSWORD: flags show in ps)")
	certFile := flag.String("cert", "", "PEM certificate to serve")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	datastores := flag.Int("datastores", 2, "number of datastores (LocalDS_0...)")
	exitOnEOF := flag.Bool("exit-on-eof", false, "exit when stdin reaches EOF")
	flag.Parse()

	if env := os.Getenv("VCSIM_PASSWORD"); env != "" {
		*password = env
	}
	if *password == "" || *certFile == "" || *keyFile == "" {
		log.Fatal("a password (VCSIM_PASSWORD or -password), -cert and -key are required")
	}
	// The built-in certificate is a 1024-bit key that OpenSSL refuses; always serve ours.
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("loading certificate: %v", err)
	}

	m := simulator.VPX()
	m.Datastore = *datastores
	// VPX() copies the 6.5 ServiceContent template; report vSphere 7.0 U3 instead.
	about := &m.ServiceContent.About
	about.Version = "7.0.3"
	about.Build = "21477706"
	about.FullName = "VMware vCenter Server 7.0.3 build-21477706"
	about.ApiVersion = "7.0.3.0"
	about.LicenseProductVersion = "7.0"
	if err := m.Create(); err != nil {
		log.Fatalf("creating inventory: %v", err)
	}
	defer m.Remove()

	// Credentials in the listen URL make SOAP Login check them; without, any login passes.
	m.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	m.Service.RegisterEndpoints = true // otherwise every REST path answers 404
	m.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s := m.Service.NewServer()
	defer s.Close()

	ready := url.URL{Scheme: s.URL.Scheme, Host: s.URL.Host, Path: s.URL.Path} // no credentials
	fmt.Printf("VCSIM_READY %s\n", ready.String())
	os.Stdout.Sync()

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGINT, syscall.SIGTERM)
	if *exitOnEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			done <- syscall.SIGTERM
		}()
	}
	<-done
}
