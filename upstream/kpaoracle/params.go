package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/serving/pkg/apis/autoscaling"
	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
	"knative.dev/serving/pkg/autoscaler/scaling"
	aresources "knative.dev/serving/pkg/reconciler/autoscaling/kpa/resources"
	rresources "knative.dev/serving/pkg/reconciler/autoscaling/resources"
)

// scenario is one run: the revision's config-autoscaler data, annotations and
// containerConcurrency (interpreted by upstream's own parsing), the start state and
// the per-second load of the metric the revision scales on.
type scenario struct {
	ID                   any               `json:"id"`
	Config               map[string]string `json:"config"`
	Annotations          map[string]string `json:"annotations"`
	ContainerConcurrency int64             `json:"container_concurrency"`
	Load                 []float64         `json:"load"`
	PodStartup           float64           `json:"pod_startup"`
	InitialReady         *int              `json:"initial_ready"`
	HoldReady            bool              `json:"hold_ready"`
	Fresh                bool              `json:"fresh"`
	History              *float64          `json:"history"`
	Until                *float64          `json:"until"`
	Reachable            *bool             `json:"reachable"`
	ActivationTimeout    *float64          `json:"activation_timeout"`
}

// revision is what upstream derives from a scenario's knobs: the PodAutoscaler, the
// autoscaler config, the decider spec (MakeDecider) and the Metric (MakeMetric).
type revision struct {
	pa                *autoscalingv1alpha1.PodAutoscaler
	cfg               *autoscalerconfig.Config
	decider           *scaling.Decider
	metric            *autoscalingv1alpha1.Metric
	minScale          int32
	maxScale          int32
	initialScale      int32
	stableWindow      time.Duration
	retention         time.Duration
	activationTimeout time.Duration
}

const (
	namespace = "oracle"
	// activationTimeoutBuffer is scaler.go's buffer on top of the progress deadline.
	activationTimeoutBuffer = 30 * time.Second
	// defaultProgressDeadline is config-deployment's default progress-deadline.
	defaultProgressDeadline = 600 * time.Second
)

func resolveRevision(sc *scenario, name string) (*revision, error) {
	cfg, err := asconfig.NewConfigFromMap(sc.Config)
	if err != nil {
		return nil, fmt.Errorf("config-autoscaler: %w", err)
	}
	reach := autoscalingv1alpha1.ReachabilityReachable
	if sc.Reachable != nil && !*sc.Reachable {
		reach = autoscalingv1alpha1.ReachabilityUnreachable
	}
	pa := &autoscalingv1alpha1.PodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: sc.Annotations},
		Spec: autoscalingv1alpha1.PodAutoscalerSpec{
			ContainerConcurrency: sc.ContainerConcurrency,
			Reachability:         reach,
		},
	}
	if fe := autoscaling.ValidateAnnotations(context.Background(), cfg, sc.Annotations); fe != nil {
		return nil, fmt.Errorf("annotations: %v", fe)
	}
	d := aresources.MakeDecider(pa, cfg)
	scrape := "metrics-" + name
	if d.Spec.TargetBurstCapacity == -1 { // resolveScrapeTarget: the activator only
		scrape = ""
	}
	lo, hi := pa.ScaleBounds(cfg)
	retention := cfg.ScaleToZeroPodRetentionPeriod
	if v, ok := pa.ScaleToZeroPodRetention(); ok {
		retention = v
	}
	if reach == autoscalingv1alpha1.ReachabilityUnreachable { // lastPodRetention
		retention = 0
	}
	timeout := defaultProgressDeadline + activationTimeoutBuffer
	if sc.ActivationTimeout != nil {
		timeout = seconds(*sc.ActivationTimeout)
	}
	if pd, ok := pa.ProgressDeadline(); ok {
		timeout = pd + activationTimeoutBuffer
	}
	return &revision{
		pa:                pa,
		cfg:               cfg,
		decider:           d,
		metric:            rresources.MakeMetric(pa, scrape, cfg),
		minScale:          lo,
		maxScale:          hi,
		initialScale:      aresources.GetInitialScale(cfg, pa),
		stableWindow:      rresources.StableWindow(pa, cfg),
		retention:         retention,
		activationTimeout: timeout,
	}, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
