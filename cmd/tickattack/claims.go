package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"strconv"
	"time"
)

// signRaw signs payload, exactly as given (it may name a key twice or
// carry keys no Signer would write), as an HS256 JWS with key secret.
func signRaw(secret []byte, payload string) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + enc.EncodeToString(mac.Sum(nil))
}

// claimsScenario sends hand-signed tokens through the real handshake. The
// token grants ticker.X only; each case adds a second spelling of a claim
// (another case, another JSON type, a duplicate key) that a lenient
// decoder might read instead, then asks for a channel the token does not
// grant.
type claimsScenario struct {
	Forbidden string        `json:"forbidden_channel"` // --channel
	Wait      time.Duration `json:"wait"`              // --wait
}

func (s *claimsScenario) register(fs *flag.FlagSet) {
	fs.StringVar(&s.Forbidden, "channel", "book.SECRET", "a channel the tokens do not grant, subscribed to after each upgrade")
	fs.DurationVar(&s.Wait, "wait", 3*time.Second, "how long to wait for the welcome and for the subscribe's answer")
}

func (s *claimsScenario) check() error { return positive(map[string]float64{"wait": s.Wait.Seconds()}) }

func (s *claimsScenario) nodeNeeds() nodeNeeds { return nodeNeeds{} }

// claimsCase is one token and what came of it.
type claimsCase struct {
	Name    string    `json:"name"`
	Payload string    `json:"payload"` // the JWT payload as signed (times relative to the run)
	Result  handshake `json:"handshake"`
	// WelcomeExpIn is welcome.exp minus the time of the upgrade, in
	// seconds: the expiry the node actually applies.
	WelcomeExpIn *int64 `json:"welcome_exp_in_s,omitempty"`
	// Subscribe lists the replies to the subscribe of the forbidden
	// channel by kind ("subscribed", "error:forbidden"); empty when none
	// came within --wait.
	Subscribe map[string]int `json:"subscribe,omitempty"`
	// Data counts snapshots and updates of the forbidden channel.
	Data int `json:"data_messages"`
}

// claimsResult is the scenario's result.
type claimsResult struct {
	Channel string       `json:"channel"`
	Cases   []claimsCase `json:"cases"`
}

func (s *claimsScenario) run(ctx context.Context, n *node, logf logFunc) (result, error) {
	now := time.Now().Unix()
	in := func(d int64) string { return strconv.FormatInt(now+d, 10) }
	const year = 365 * 24 * 3600
	cases := []claimsCase{
		{Name: "control (channels only)", Payload: `{"sub":"claims-control","channels":["ticker.X"],"exp":` + in(600) + `}`},
		{Name: `"Channels" beside "channels"`, Payload: `{"sub":"claims-1","channels":["ticker.X"],"exp":` + in(600) + `,"Channels":[">"]}`},
		{Name: `"CHANNELS" beside "channels"`, Payload: `{"sub":"claims-2","channels":["ticker.X"],"exp":` + in(600) + `,"CHANNELS":[">"]}`},
		{Name: `"Exp" (+1 y) beside "exp" (+60 s)`, Payload: `{"sub":"claims-3","channels":["ticker.X"],"exp":` + in(60) + `,"Exp":` + in(year) + `}`},
		{Name: `"exp" as a string of now+600`, Payload: `{"sub":"claims-4","channels":["ticker.X"],"exp":"` + in(600) + `"}`},
		{Name: `"exp" as the string "1e10"`, Payload: `{"sub":"claims-5","channels":["ticker.X"],"exp":"1e10"}`},
		{Name: `"channels" twice, ">" second`, Payload: `{"sub":"claims-6","channels":["ticker.X"],"channels":[">"],"exp":` + in(600) + `}`},
	}
	for i := range cases {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.try(n, &cases[i])
		logf("claims: %s: %s", cases[i].Name, cases[i].Result)
	}
	return &claimsResult{Channel: s.Forbidden, Cases: cases}, nil
}

// try runs one case: handshake, welcome, subscribe to the forbidden channel.
func (s *claimsScenario) try(n *node, cc *claimsCase) {
	replies := make(chan string, 16)
	data := make(chan struct{}, 1024)
	c := newClient(func(m *serverMsg, _ int, _ time.Time) {
		switch {
		case m.ID != nil && *m.ID == 1:
			replies <- m.kind()
		case (m.Type == "snapshot" || m.Type == "update") && m.Channel == s.Forbidden:
			select {
			case data <- struct{}{}:
			default:
			}
		}
	})
	_, hs := n.dial(dialSpec{token: signRaw(n.creds.Secret, cc.Payload)}, c)
	cc.Result = hs
	if hs.Status != 101 {
		return
	}
	upgraded := time.Now()
	defer c.shutdown()
	deadline := time.After(s.Wait)
	for c.welcomeMsg() == nil {
		select {
		case <-deadline:
			return
		case <-c.closed:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	exp := c.welcomeMsg().Exp - upgraded.Unix()
	cc.WelcomeExpIn = &exp
	if err := c.send(subscribeCmd(1, s.Forbidden)); err != nil {
		return
	}
	cc.Subscribe = map[string]int{}
	// A subscribe is answered by one ack and/or one error per channel:
	// one reply for one channel.
	select {
	case k := <-replies:
		cc.Subscribe[k]++
	case <-deadline:
	case <-c.closed:
	}
	time.Sleep(100 * time.Millisecond) // a snapshot would follow the ack
	cc.Data = len(data)
}

// welcomeMsg returns the welcome once it came.
func (c *client) welcomeMsg() *serverMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

func (r *claimsResult) text(p printer) {
	p("tokens granting ticker.X only; after each upgrade, a subscribe to %s:", r.Channel)
	for _, c := range r.Cases {
		line := fmt.Sprintf("%-36s %s", c.Name+":", c.Result)
		if c.WelcomeExpIn != nil {
			line += fmt.Sprintf("; welcome.exp = upgrade + %d s", *c.WelcomeExpIn)
		}
		if c.Result.Status == 101 {
			sub := "no answer"
			if len(c.Subscribe) > 0 {
				sub = counts(c.Subscribe)
			}
			line += fmt.Sprintf("; subscribe %s: %s", r.Channel, sub)
			if c.Data > 0 {
				line += fmt.Sprintf(", then %d data messages", c.Data)
			}
		}
		p("%s", line)
	}
}
