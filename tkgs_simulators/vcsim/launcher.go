// Launcher for govmomi's vCenter simulator, built by tkgs_simulators/vcsim.py.
// Prints "VCSIM_READY <url>" on stdout once serving, then runs until SIGINT/SIGTERM
// (or, with -exit-on-eof, until stdin closes, so it dies with its parent).
//
// With -namespace-management-upstream, every path under /api/vcenter/namespace-management/ and
// /api/vcenter/namespaces/ is reverse-proxied to that HTTPS address: tkgs-runbook's Workload Management stand-in, run by the
// Python process that owns this simulator (govmomi's own handlers there answer enable with an
// empty 200 and store nothing). The upstream must present the -cert certificate.
//
// The inventory is a vSphere 7.0 U3 one: vCenter reports 7.0.3 (-vcenter-version plays another 7.0 update:
// its about and API version) and the model's hosts ESXi 7.0.3 (a host added later through AddHost_Task is
// govmomi's template, ESXi 6.5.0). ReconfigureComputeResource_Task sets a cluster's DRS and vSphere HA as
// vCenter does (clusterConfigApplied), and ReconfigVM_Task's extraConfig replaces a key set again and removes
// one set to "" (extraConfigAsVCenterKeepsIt).
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"

	// Registered through init(): REST (vAPI) and storage policies. Not vapi/namespace/simulator:
	// its handlers would take /api/vcenter/namespace-management/clusters from the stand-in.
	_ "github.com/vmware/govmomi/pbm/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
)

const namespaceManagementPath = "/api/vcenter/namespace-management/"

// namespacesPath: vSphere Namespaces (instances), which the stand-in plays with the Supervisor it runs.
const namespacesPath = "/api/vcenter/namespaces/"

// standInHeader marks every answer under namespaceManagementPath, the stand-in's own and the
// proxy's when the stand-in cannot be reached (the Python side sets it on its answers).
const standInHeader = "X-Simulated-By"
const standInName = "tkgs-runbook vCenter simulator (namespace-management stand-in)"

// namespaceManagementProxy forwards to upstream over TLS, trusting only caPEM (our own
// certificate, which the stand-in serves too); if the stand-in is down it answers as vCenter's
// /api does for a service that is not there: 503 SERVICE_UNAVAILABLE in the /api error shape.
func namespaceManagementProxy(upstream *url.URL, caPEM []byte) http.Handler {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		log.Fatal("the -cert file holds no PEM certificate for the namespace-management upstream")
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Printf("namespace-management stand-in unreachable: %v", err)
		w.Header().Set(standInHeader, standInName)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]interface{}{
			"error_type": "SERVICE_UNAVAILABLE",
			"messages": []map[string]interface{}{{
				"id":              "tkgs.stand_in.unreachable",
				"default_message": "The namespace-management stand-in of this simulator is not running.",
				"args":            []string{},
			}},
		})
	}
	return proxy
}

// emptyBodyAsNoInput hands govmomi's /rest handlers "{}" for a POST without a body: vCenter takes an
// operation that has no input (~action=complete, validate, list-...) without one, as VMware's REST
// reference shows them, where the simulator's decoder would answer 400 to the empty body.
func emptyBodyAsNoInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/rest/") && r.ContentLength == 0 {
			r.Body = io.NopCloser(strings.NewReader("{}"))
			r.ContentLength = 2
		}
		next.ServeHTTP(w, r)
	})
}

// taskReturned is the task a SOAP call's answer names (<returnval type="Task">task-12</returnval>).
var taskReturned = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)

// appliedAfter runs apply(request, answer) once the simulator has answered a SOAP call of method with
// HTTP 200: the call is the simulator's own (its session check, its task); apply only adds what it leaves out.
func appliedAfter(next http.Handler, method string, apply func(request, answer []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != vim25.Path {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !bytes.Contains(body, []byte(method)) {
			next.ServeHTTP(w, r)
			return
		}
		answer := httptest.NewRecorder()
		next.ServeHTTP(answer, r)
		if answer.Code == http.StatusOK {
			apply(body, answer.Body.Bytes())
		}
		for name, values := range answer.Header() {
			w.Header()[name] = values
		}
		w.WriteHeader(answer.Code)
		_, _ = w.Write(answer.Body.Bytes())
	})
}

// succeeded is the task a SOAP call's answer names, when it ended in success.
func succeeded(answer []byte) bool {
	found := taskReturned.FindSubmatch(answer)
	if found == nil {
		return false
	}
	task, _ := simulator.Map.Get(types.ManagedObjectReference{Type: "Task", Value: string(found[1])}).(*simulator.Task)
	return task != nil && task.Info.State == types.TaskInfoStateSuccess
}

// extraConfigAsVCenterKeepsIt makes a ReconfigVM_Task's extraConfig do what vCenter's does: a key set
// again replaces its value, and a key set to "" is removed ("To remove an option, set its value to the
// empty string"). This govmomi's simulator appends every option it is given, so an old value stays.
func extraConfigAsVCenterKeepsIt(request, answer []byte) {
	method, err := simulator.UnmarshalBody(types.TypeFunc(), request)
	if err != nil {
		return
	}
	call, ok := method.Body.(*types.ReconfigVM_Task)
	vm, isVM := simulator.Map.Get(method.This).(*simulator.VirtualMachine)
	if !ok || !isVM || len(call.Spec.ExtraConfig) == 0 || !succeeded(answer) {
		return
	}
	emptied := map[string]bool{}
	for _, option := range call.Spec.ExtraConfig {
		value := option.GetOptionValue()
		text, isText := value.Value.(string)
		emptied[value.Key] = value.Value == nil || (isText && text == "")
	}
	simulator.Map.WithLock(vm, func() {
		last := map[string]int{}
		for i, option := range vm.Config.ExtraConfig {
			last[option.GetOptionValue().Key] = i
		}
		var kept []types.BaseOptionValue
		for i, option := range vm.Config.ExtraConfig {
			key := option.GetOptionValue().Key
			if last[key] == i && !emptied[key] {
				kept = append(kept, option)
			}
		}
		vm.Config.ExtraConfig = kept
	})
}

// clusterConfigApplied sets a cluster's DRS (enabled, defaultVmBehavior) and vSphere HA (enabled) from a
// ReconfigureComputeResource_Task's ClusterConfigSpecEx once the simulator's task for it succeeded, as
// vCenter does: this govmomi's simulator applies only the spec's rules, groups and per-VM overrides, so
// neither could be set through its API.
func clusterConfigApplied(request, answer []byte) {
	method, err := simulator.UnmarshalBody(types.TypeFunc(), request)
	if err != nil {
		return
	}
	call, ok := method.Body.(*types.ReconfigureComputeResource_Task)
	if !ok {
		return
	}
	spec, ok := call.Spec.(*types.ClusterConfigSpecEx)
	cluster, isCluster := simulator.Map.Get(method.This).(*simulator.ClusterComputeResource)
	if !ok || !isCluster || !succeeded(answer) {
		return
	}
	simulator.Map.WithLock(cluster, func() {
		config := cluster.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if drs := spec.DrsConfig; drs != nil {
			if drs.Enabled != nil {
				config.DrsConfig.Enabled = drs.Enabled
			}
			if drs.DefaultVmBehavior != "" {
				config.DrsConfig.DefaultVmBehavior = drs.DefaultVmBehavior
			}
		}
		if das := spec.DasConfig; das != nil && das.Enabled != nil {
			config.DasConfig.Enabled = das.Enabled
		}
	})
}

// esxi703 is what the model's hosts report: ESXi 7.0 U3, beside the vCenter 7.0.3 below.
func esxi703(product types.AboutInfo) types.AboutInfo {
	product.Version = "7.0.3"
	product.Build = "21930508"
	product.FullName = "VMware ESXi 7.0.3 build-21930508"
	product.ApiVersion = "7.0.3.0"
	product.LicenseProductVersion = "7.0"
	return product
}

// vcenterBuilds are the vCenter 7.0 updates -vcenter-version plays, each reporting a build number of its own.
var vcenterBuilds = map[string]string{"7.0.1": "17004997", "7.0.2": "17920168", "7.0.3": "21477706"}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on (port 0 picks a free one)")
	username := flag.String("username", "administrator@vsphere.local", "SOAP login user")
	password := flag.String("password", "", "SOAP login password (prefer env VCSIM_PASSWORD: flags show in ps)")
	certFile := flag.String("cert", "", "PEM certificate to serve")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	datastores := flag.Int("datastores", 2, "number of datastores (LocalDS_0...)")
	exitOnEOF := flag.Bool("exit-on-eof", false, "exit when stdin reaches EOF")
	vcenterVersion := flag.String("vcenter-version", "7.0.3", "the vCenter 7.0 update to report: 7.0.1, 7.0.2 or 7.0.3")
	nsUpstream := flag.String("namespace-management-upstream", "",
		"https://host:port of the namespace-management stand-in that "+namespaceManagementPath+" is proxied to")
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

	if *nsUpstream != "" {
		upstream, err := url.Parse(*nsUpstream)
		if err != nil || upstream.Scheme != "https" || upstream.Host == "" {
			log.Fatalf("-namespace-management-upstream must be https://host:port, not %q", *nsUpstream)
		}
		caPEM, err := os.ReadFile(*certFile)
		if err != nil {
			log.Fatalf("reading certificate: %v", err)
		}
		proxy := namespaceManagementProxy(upstream, caPEM)
		// Registered endpoints are added when NewServer builds the service's mux.
		simulator.RegisterEndpoint(func(s *simulator.Service, r *simulator.Registry) {
			s.Handle(namespaceManagementPath, proxy)
			s.Handle(namespacesPath, proxy)
		})
	}

	build, known := vcenterBuilds[*vcenterVersion]
	if !known {
		log.Fatalf("-vcenter-version %q is not played: 7.0.1, 7.0.2 or 7.0.3", *vcenterVersion)
	}
	m := simulator.VPX()
	m.Datastore = *datastores
	// VPX() copies the 6.5 ServiceContent template; report the vSphere 7.0 update asked for instead.
	about := &m.ServiceContent.About
	about.Version = *vcenterVersion
	about.Build = build
	about.FullName = "VMware vCenter Server " + *vcenterVersion + " build-" + build
	about.ApiVersion = *vcenterVersion + ".0"
	about.LicenseProductVersion = "7.0"
	if err := m.Create(); err != nil {
		log.Fatalf("creating inventory: %v", err)
	}
	defer m.Remove()
	// Each host's config is its own copy; its summary's product points at govmomi's template (6.5.0).
	for _, entity := range simulator.Map.All("HostSystem") {
		host := entity.(*simulator.HostSystem)
		host.Config.Product = esxi703(host.Config.Product)
		host.Summary.Config.Product = &host.Config.Product
	}

	// Credentials in the listen URL make SOAP Login check them; without, any login passes.
	m.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	m.Service.RegisterEndpoints = true // otherwise every REST path answers 404
	m.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s := m.Service.NewServer()
	defer s.Close()
	handler := emptyBodyAsNoInput(s.Config.Handler)
	handler = appliedAfter(handler, "ReconfigureComputeResource_Task", clusterConfigApplied)
	s.Config.Handler = appliedAfter(handler, "ReconfigVM_Task", extraConfigAsVCenterKeepsIt)

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
