package e2e

// Tests of deploy/replicated/k8s: the manifests decoded strictly into the
// Kubernetes API types, compared with the reference deployment's, and
// `kubectl apply -f deploy/replicated/k8s/` run against the API server
// stand-in of deploy_k8s_apply_test.go.

import (
	"encoding/json"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestDeployReplicatedK8sManifests checks the folder as `kubectl apply -f`
// reads it: the namespace file sorts first and holds every other object,
// no kustomization, no PersistentVolumeClaim anywhere; one Deployment with
// several replicas and a rolling strategy, whose container is the
// reference deployment's but for the database, SMITHERS_DATABASE_URL from
// a key of the folder's example Secret (a postgres:// URL) with the
// image's SQLite path blanked, and no data volume; its tunables the
// gateway's defaults, the lease among them; a PodDisruptionBudget that
// keeps a majority up and still lets a node drain; the token Secret, the
// module, the Service and the Ingress the reference deployment's.
func TestDeployReplicatedK8sManifests(t *testing.T) {
	t.Parallel()
	known := gatewayEnvVars(t)
	m := loadK8sManifestsIn(t, replicatedFile("k8s"))
	ref := loadK8sManifests(t)

	files := slices.Clone(m.files)
	sort.Strings(files)
	if len(m.objects) == 0 || m.objects[0].kind != "Namespace" || m.objects[0].file != files[0] {
		t.Errorf("the first file in name order (%s) does not hold the Namespace: kubectl apply -f would create objects in a namespace that does not exist yet", files[0])
	}
	for _, f := range m.files {
		if strings.HasPrefix(strings.ToLower(f), "kustomization") {
			t.Errorf("%s/%s: the folder is applied with kubectl apply -f, not -k", m.dir, f)
		}
	}
	var deployments []string
	for _, o := range m.objects {
		switch {
		case o.kind == "PersistentVolumeClaim" || o.kind == "StatefulSet" || o.kind == "PersistentVolume":
			t.Errorf("%s/%s: %s %s: the replicated deployment keeps nothing on volumes", m.dir, o.file, o.kind, o.obj.GetName())
		case o.kind == "Deployment":
			deployments = append(deployments, o.obj.GetName())
		}
		switch {
		case o.kind == "Namespace":
			if o.obj.GetName() != k8sNamespace {
				t.Errorf("%s: Namespace %s, want %s", o.file, o.obj.GetName(), k8sNamespace)
			}
		case o.obj.GetNamespace() != k8sNamespace:
			t.Errorf("%s: %s %s is in namespace %q, want %s", o.file, o.kind, o.obj.GetName(), o.obj.GetNamespace(), k8sNamespace)
		}
	}
	if len(deployments) != 1 {
		t.Fatalf("%s has Deployments %q, want exactly one", m.dir, deployments)
	}

	dep := k8sGet[*appsv1.Deployment](t, m, "Deployment", deployments[0])
	refDep := k8sGet[*appsv1.Deployment](t, ref, "Deployment", "smithers-gateway")
	if dep.Name != refDep.Name {
		t.Errorf("Deployment %s, want the reference deployment's name %s (this folder replaces it)", dep.Name, refDep.Name)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Errorf("Deployment replicas %v, want at least 2", dep.Spec.Replicas)
	}
	if dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("Deployment strategy %q, want RollingUpdate (replicas share the database; Recreate would stop them all)", dep.Spec.Strategy.Type)
	}
	if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("Deployment selector %v does not select its own pod template's labels %v (%v)", dep.Spec.Selector, dep.Spec.Template.Labels, err)
	}
	pod, refPod := dep.Spec.Template.Spec, refDep.Spec.Template.Spec
	for _, v := range pod.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil || v.Ephemeral != nil || v.HostPath != nil:
			t.Errorf("volume %s is %+v: the replicated deployment keeps nothing on volumes", v.Name, v.VolumeSource)
		case v.Secret != nil:
			k8sGet[*corev1.Secret](t, m, "Secret", v.Secret.SecretName)
		case v.ConfigMap != nil:
			k8sGet[*corev1.ConfigMap](t, m, "ConfigMap", v.ConfigMap.Name)
		case v.EmptyDir != nil:
		default:
			t.Errorf("volume %s is neither a Secret, ConfigMap nor emptyDir of this folder", v.Name)
		}
	}
	if !apiequality.Semantic.DeepEqual(pod.SecurityContext, refPod.SecurityContext) ||
		!apiequality.Semantic.DeepEqual(pod.ShareProcessNamespace, refPod.ShareProcessNamespace) ||
		!apiequality.Semantic.DeepEqual(pod.TerminationGracePeriodSeconds, refPod.TerminationGracePeriodSeconds) {
		t.Errorf("the pod's securityContext, shareProcessNamespace or terminationGracePeriodSeconds differ from the reference deployment's")
	}
	if len(pod.Containers) != 1 || len(refPod.Containers) != 1 {
		t.Fatalf("Deployments have %d and %d (reference) containers, want 1", len(pod.Containers), len(refPod.Containers))
	}

	// The container is the reference's, but for its environment and the
	// reference's database volume.
	c, refC := pod.Containers[0].DeepCopy(), refPod.Containers[0].DeepCopy()
	refEnv := map[string]corev1.EnvVar{}
	for _, e := range refC.Env {
		refEnv[e.Name] = e
	}
	refDataDir := path.Dir(refEnv["SMITHERS_DB_PATH"].Value)
	refC.VolumeMounts = slices.DeleteFunc(refC.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == refDataDir })
	env, envFrom := c.Env, c.EnvFrom
	c.Env, refC.Env, c.EnvFrom, refC.EnvFrom = nil, nil, nil, nil
	if !apiequality.Semantic.DeepEqual(c, refC) {
		a, _ := json.Marshal(c)
		b, _ := json.Marshal(refC)
		t.Errorf("the container differs from the reference deployment's beyond its environment and database volume:\nreplicated: %s\nreference:  %s", a, b)
	}
	for _, vm := range c.VolumeMounts {
		if !vm.ReadOnly && vm.MountPath != "/tmp" {
			t.Errorf("volumeMount %s at %s is writable: a replica keeps nothing of its own", vm.Name, vm.MountPath)
		}
	}

	var urlRef *corev1.SecretKeySelector
	seen := map[string]bool{}
	for _, e := range env {
		checkGatewayVar(t, known, "Deployment env", e.Name, e.Value, false)
		seen[e.Name] = true
		switch e.Name {
		case "SMITHERS_DATABASE_URL":
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
				t.Errorf("Deployment env SMITHERS_DATABASE_URL %+v, want it from a Secret key (secretKeyRef)", e)
				continue
			}
			urlRef = e.ValueFrom.SecretKeyRef
			if urlRef.Optional != nil && *urlRef.Optional {
				t.Errorf("the database URL's secretKeyRef is optional: a pod without it would not start on PostgreSQL")
			}
		case "SMITHERS_DB_PATH":
			// The image sets it; with a database URL it must be blank.
			if e.Value != "" || e.ValueFrom != nil {
				t.Errorf("Deployment env SMITHERS_DB_PATH %+v, want \"\" (the image's SQLite path blanked: with both set the gateway refuses to start)", e)
			}
		default:
			r, ok := refEnv[e.Name]
			if !ok || !apiequality.Semantic.DeepEqual(e, r) {
				t.Errorf("Deployment env %+v, want the reference deployment's %+v", e, r)
			}
		}
	}
	for name := range refEnv {
		if !seen[name] {
			t.Errorf("Deployment env does not set %s, which the reference deployment sets", name)
		}
	}
	if urlRef == nil {
		t.Fatalf("Deployment env has no SMITHERS_DATABASE_URL")
	}
	dbSecret := k8sGet[*corev1.Secret](t, m, "Secret", urlRef.Name)
	if o := m.byKey["Secret/"+urlRef.Name]; o.file != "database-secret.example.yaml" {
		t.Errorf("Secret %s is in %s, want database-secret.example.yaml", urlRef.Name, o.file)
	}
	if raw, ok := dbSecret.StringData[urlRef.Key]; !ok {
		t.Errorf("Secret %s has no stringData key %s, the one SMITHERS_DATABASE_URL reads", dbSecret.Name, urlRef.Key)
	} else {
		u := parseDatabaseURL(t, "database-secret.example.yaml", raw)
		if pw, _ := u.User.Password(); !strings.Contains(pw, "change-me") {
			t.Errorf("database-secret.example.yaml's password %q is not an obvious placeholder", pw)
		}
	}

	// Tunables: the reference's, plus the lease, each the gateway's default.
	if len(envFrom) != 1 || envFrom[0].ConfigMapRef == nil {
		t.Fatalf("envFrom %+v, want one ConfigMap", envFrom)
	}
	cm := k8sGet[*corev1.ConfigMap](t, m, "ConfigMap", envFrom[0].ConfigMapRef.Name)
	for name, v := range cm.Data {
		checkGatewayVar(t, known, "ConfigMap "+cm.Name, name, v, true)
	}
	refCM := k8sGet[*corev1.ConfigMap](t, ref, "ConfigMap", refPod.Containers[0].EnvFrom[0].ConfigMapRef.Name)
	for name, v := range refCM.Data {
		if cm.Data[name] != v {
			t.Errorf("ConfigMap %s: %s=%q, the reference deployment has %q", cm.Name, name, cm.Data[name], v)
		}
	}
	if _, ok := cm.Data["SMITHERS_GATEWAY_LEASE_MS"]; !ok {
		t.Errorf("ConfigMap %s does not show SMITHERS_GATEWAY_LEASE_MS, the replicated mode's own tunable", cm.Name)
	}

	// The objects the replicated deployment shares with the reference one.
	for _, key := range []string{"Secret/smithers-gateway-tokens", "ConfigMap/smithers-gateway-module", "Service/smithers-gateway", "Ingress/smithers-gateway"} {
		kind, name, _ := strings.Cut(key, "/")
		o, ok := m.byKey[key]
		if !ok {
			t.Errorf("%s has no %s %s", m.dir, kind, name)
			continue
		}
		if r := ref.byKey[key]; !apiequality.Semantic.DeepEqual(o.obj, r.obj) || o.file != r.file {
			t.Errorf("%s/%s: %s %s differs from the reference deployment's (%s)", m.dir, o.file, kind, name, r.file)
		}
	}

	// The disruption budget keeps a majority and still lets a node drain.
	for _, o := range m.objects {
		if o.kind != "PodDisruptionBudget" {
			continue
		}
		pdb := o.obj.(*policyv1.PodDisruptionBudget)
		if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
			t.Errorf("PodDisruptionBudget %s does not select the gateway pods", pdb.Name)
		}
		if mina := pdb.Spec.MinAvailable; mina == nil || mina.IntValue() < 1 || int32(mina.IntValue()) >= *dep.Spec.Replicas {
			t.Errorf("PodDisruptionBudget %s minAvailable %v, want at least 1 and fewer than the %d replicas (else no pod may ever be evicted)", pdb.Name, mina, *dep.Spec.Replicas)
		}
	}
}

// TestDeployReplicatedK8sApply runs `kubectl apply -f deploy/replicated/k8s/`
// from the repository root against the API server stand-in: every object
// is created in file order, the Namespace first, and what the gateway pods
// need (the ConfigMaps, the token Secret and the database Secret) then
// exists, so the pods can start; no claim is created.
func TestDeployReplicatedK8sApply(t *testing.T) {
	t.Parallel()
	kubectl := needTool(t, "kubectl", "apt-get install kubernetes-client")
	m := loadK8sManifestsIn(t, replicatedFile("k8s"))

	api := newFakeAPIServer(t)
	out, err := runKubectl(t, kubectl, api, moduleRoot, "apply", "-f", "deploy/replicated/k8s/", "--validate=false")
	if err != nil {
		t.Fatalf("kubectl apply -f deploy/replicated/k8s/: %v\n%s", err, out)
	}
	created := api.createdKeys()
	if len(created) != len(m.objects) {
		t.Errorf("kubectl apply created %d objects %q, want the folder's %d\n%s", len(created), created, len(m.objects), out)
	}
	for i, o := range m.objects {
		if i < len(created) && created[i] != o.kind+"/"+o.obj.GetName() {
			t.Errorf("object %d created: %s, want %s %s of %s (file order)", i, created[i], o.kind, o.obj.GetName(), o.file)
		}
	}
	if len(created) == 0 || created[0] != "Namespace/"+k8sNamespace {
		t.Errorf("kubectl apply created %q: the Namespace was not first", created)
	}

	var dep appsv1.Deployment
	if err := json.Unmarshal(api.object(t, "Deployment/smithers-gateway"), &dep); err != nil {
		t.Fatal(err)
	}
	var needs []string
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, f := range c.EnvFrom {
			needs = append(needs, "ConfigMap/"+f.ConfigMapRef.Name)
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				needs = append(needs, "Secret/"+e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		switch {
		case v.Secret != nil:
			needs = append(needs, "Secret/"+v.Secret.SecretName)
		case v.ConfigMap != nil:
			needs = append(needs, "ConfigMap/"+v.ConfigMap.Name)
		}
	}
	if !slices.Contains(needs, "Secret/smithers-database") || len(needs) < 4 {
		t.Errorf("the applied Deployment references only %q", needs)
	}
	for _, key := range needs {
		if api.get(key) == nil {
			t.Errorf("after kubectl apply there is no %s, which the gateway pods need: they would never start", key)
		}
	}
	for _, key := range created {
		if strings.HasPrefix(key, "PersistentVolumeClaim/") {
			t.Errorf("kubectl apply created %s", key)
		}
	}
}
