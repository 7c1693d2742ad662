package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickgate/tickgate/feed"
	"github.com/tickgate/tickgate/proto"
)

// Eviction reasons, the label values of tickgate_evictions_total.
const (
	evictTradeOverflow = "trade_overflow" // a trade buffer overflowed
	evictQueueOverflow = "queue_overflow" // too many replies/control frames pending
	evictWriteTimeout  = "write_timeout"  // a write made no progress for WriteTimeout
	evictLagTimeout    = "lag_timeout"    // a ping went unanswered for LagTimeout: the client stopped reading
	evictIdleTimeout   = "idle_timeout"   // no frame at all from the client for IdleTimeout
)

// Handshake failure reasons beyond the protocol's refusal codes.
const (
	failNotWebSocket = "websocket_required"
	failUpgrade      = "upgrade_failed"
	// failGone: the client left while its connection waited in the
	// accept queue; closed without a TLS handshake (accept.go).
	failGone = "client_gone"
)

// Metrics are the gateway's Prometheus series. Every labelled series
// starts at zero for each known label value. Static after construction;
// the collectors are safe for concurrent use.
type Metrics struct {
	connections      prometheus.Gauge
	messagesSent     prometheus.Counter
	bytesSent        prometheus.Counter
	evictions        *prometheus.CounterVec
	handshakeFails   *prometheus.CounterVec
	handshakeSeconds prometheus.Histogram
	deliveryLatency  *pow2Histogram
	feedMessages     prometheus.Counter
	feedOutcomes     *prometheus.CounterVec
	coalesced        *prometheus.CounterVec
	outboxPending    *pow2Histogram
	subscriptions    prometheus.Gauge
	feedGaps         *prometheus.CounterVec
	channels         *prometheus.GaugeVec
	historyReadsVec  *prometheus.CounterVec
	commandErrors    *prometheus.CounterVec
	restSnapshots    *prometheus.CounterVec
	restCacheHits    prometheus.Counter

	revocationsReceived *prometheus.CounterVec
	revocationsApplied  prometheus.Counter
	revocationCloses    prometheus.Counter
	revocationsActive   prometheus.Gauge

	// Per-message series resolved once, so the feed path does no label
	// lookups: by feed.Outcome and by proto.Kind.
	outcomeByCode   map[feed.Outcome]prometheus.Counter
	coalescedByKind [proto.NumKinds + 1]prometheus.Counter
	feedGapsByKind  [proto.NumKinds + 1]prometheus.Counter
	channelsByState [numChanStates]prometheus.Gauge
	historyReads    map[string]prometheus.Counter // by result
	errorsByCode    map[proto.ErrorCode]prometheus.Counter
}

// NewMetrics creates the series and registers them with reg (nil: a fresh
// registry that nobody scrapes, for tests and tools).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tickgate_connections_active", Help: "Open WebSocket connections."}),
		messagesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickgate_messages_sent_total", Help: "Messages written to clients."}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickgate_bytes_sent_total", Help: "Bytes of WebSocket frames written to clients."}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_evictions_total", Help: "Slow consumers evicted (close 4008), by reason."}, []string{"reason"}),
		handshakeFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_handshake_failures_total", Help: "Refused or failed WebSocket handshakes, by reason."}, []string{"reason"}),
		handshakeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tickgate_handshake_duration_seconds", Help: "Time from request to upgraded connection.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		deliveryLatency: newLatencyHistogram("tickgate_delivery_latency_seconds", "Feed event time (ts) to the write that sent it to a client."),
		feedMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickgate_feed_messages_total", Help: "Feed messages received from NATS for channels the node holds (see tickgate_feed_outcomes_total for what each did)."}),
		feedOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_feed_outcomes_total", Help: "What each feed message did to its channel's state, by outcome."}, []string{"outcome"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_coalesced_total", Help: "Updates folded into a pending one for a connection that was behind, by kind."}, []string{"kind"}),
		outboxPending: newPendingHistogram("tickgate_outbox_pending", "Messages a connection's writer found pending each time it woke."),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tickgate_subscriptions_active", Help: "Channel subscriptions across all connections."}),
		feedGaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_feed_gaps_total", Help: "Feed seq gaps the node saw (feed messages it never had), by kind; on trade channels each is reported to subscribers as a gap message."}, []string{"kind"}),
		channels: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tickgate_channels", Help: "Channels the node holds, by state: live, stale (NATS lost, or nothing arrived for --stale-after), resyncing (a book waits for a snapshot)."}, []string{"state"}),
		historyReadsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_history_reads_total", Help: "Resumes the node's memory could not serve, read from the history stream, by result: resumed, warmed (a book or ticker the node held nothing of started from it), filled (trades the node never had live, read before reporting a gap), recent (recent trades the node's memory was short of, for a snapshot), not_covered (the stream lacks what was asked), unavailable (no stream, no JetStream, a timeout)."}, []string{"result"}),
		restSnapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_rest_snapshots_total", Help: "REST snapshot requests (GET /v1/snapshot/<channel>), by result: ok, or the error code answered."}, []string{"result"}),
		restCacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickgate_rest_snapshot_cache_hits_total", Help: "REST snapshots answered with a body encoded for an earlier request (same channel and options, no feed message since)."}),
		commandErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_command_errors_total", Help: "Error messages answering client commands (one per refused channel), by code."}, []string{"code"}),
		revocationsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_revocations_received_total", Help: "Revocations the node learned of, by source: api (its admin API), nats (the revocation subject), store (the bucket, read at start and when NATS came back)."}, []string{"source"}),
		revocationsApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickgate_revocations_applied_total", Help: "Revocations received that were new to the node or moved a cut-off later."}),
		revocationCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickgate_revocation_closes_total", Help: "Connections closed with 4003 revoked."}),
		revocationsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tickgate_revocations_active", Help: "Revocations in force on the node (subs whose older tokens are refused)."}),
	}
	reg.MustRegister(m.connections, m.messagesSent, m.bytesSent, m.evictions, m.handshakeFails, m.handshakeSeconds,
		m.deliveryLatency, m.feedMessages, m.feedOutcomes, m.coalesced, m.outboxPending, m.subscriptions, m.feedGaps, m.channels, m.historyReadsVec, m.commandErrors, m.restSnapshots, m.restCacheHits,
		m.revocationsReceived, m.revocationsApplied, m.revocationCloses, m.revocationsActive)
	for _, s := range []string{revokedByAPI, revokedByNATS, revokedByStore} {
		m.revocationsReceived.WithLabelValues(s)
	}
	for _, r := range []string{evictTradeOverflow, evictQueueOverflow, evictWriteTimeout, evictLagTimeout, evictIdleTimeout} {
		m.evictions.WithLabelValues(r)
	}
	for _, c := range proto.HandshakeCodes() {
		m.handshakeFails.WithLabelValues(string(c))
	}
	m.handshakeFails.WithLabelValues(failNotWebSocket)
	m.handshakeFails.WithLabelValues(failUpgrade)
	m.handshakeFails.WithLabelValues(failGone)
	for st := range numChanStates {
		m.channelsByState[st] = m.channels.WithLabelValues(st.String())
	}
	m.historyReads = make(map[string]prometheus.Counter)
	for _, r := range []string{historyResumed, historyWarmed, historyFilled, historyRecent, historyNotCovered, historyFailed} {
		m.historyReads[r] = m.historyReadsVec.WithLabelValues(r)
	}
	for _, r := range restResults() {
		m.restSnapshots.WithLabelValues(r)
	}
	m.errorsByCode = make(map[proto.ErrorCode]prometheus.Counter)
	for _, c := range proto.ErrorCodes() {
		m.errorsByCode[c] = m.commandErrors.WithLabelValues(string(c))
	}
	m.outcomeByCode = make(map[feed.Outcome]prometheus.Counter)
	for _, o := range feed.Outcomes() {
		m.outcomeByCode[o] = m.feedOutcomes.WithLabelValues(o.String())
	}
	for _, k := range proto.Kinds() {
		m.coalescedByKind[k] = m.coalesced.WithLabelValues(k.String())
		m.feedGapsByKind[k] = m.feedGaps.WithLabelValues(k.String())
	}
	return m
}

// restResult counts one REST snapshot request by its result.
func (m *Metrics) restResult(r string) { m.restSnapshots.WithLabelValues(r).Inc() }

// commandError counts one error reply by its code.
func (m *Metrics) commandError(c proto.ErrorCode) {
	if ctr, ok := m.errorsByCode[c]; ok {
		ctr.Inc()
		return
	}
	m.commandErrors.WithLabelValues(string(c)).Inc()
}

// feedOutcome counts one feed message by what it did.
func (m *Metrics) feedOutcome(o feed.Outcome) {
	if c, ok := m.outcomeByCode[o]; ok {
		c.Inc()
		return
	}
	m.feedOutcomes.WithLabelValues(o.String()).Inc()
}
