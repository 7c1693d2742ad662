package gateway

import (
	"errors"
	"testing"
)

// The trade buffer's bound takes what a subscription can count: its
// trade bytes are 32-bit (the 192-byte subscription, TestHotLayouts).
func TestConfigTradeBufferBytesBounds(t *testing.T) {
	for name, tc := range map[string]struct {
		bytes int
		ok    bool
	}{
		"the least":       {MinTradeBufferBytes, true},
		"below the least": {MinTradeBufferBytes - 1, false},
		"the default":     {DefaultTradeBufferBytes, true},
		"the most":        {MaxTradeBufferBytes, true},
		"beyond the most": {MaxTradeBufferBytes + 1, false},
		"past 32 bits":    {1 << 32, false},
	} {
		t.Run(name, func(t *testing.T) {
			c := Config{NodeID: "cfg-test", TradeBufferBytes: tc.bytes}.withDefaults()
			err := c.Validate()
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("TradeBufferBytes %d: %v, want ok %v", tc.bytes, err, tc.ok)
			}
		})
	}
}
