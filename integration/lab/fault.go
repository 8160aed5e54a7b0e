package lab

import (
	"fmt"
	"strings"
)

// faultTable is the nftables table the lab's faults live in, inside one host's namespace.
const faultTable = "lodestar_lab_fault"

// DropAll makes the host drop every packet on eth0, both ways, the way a pulled cable or a
// partition does to peers: their connections stall (nothing answers, nothing resets) until
// their own timeouts. Traffic inside the host (to its own address, over lo) still flows, so
// the host's own API stays readable through Host.Dial. Heal lifts it.
func (h *Host) DropAll() error {
	return h.nft(fmt.Sprintf(`table inet %[1]s {
	chain in { type filter hook input priority -10; policy accept; iifname "eth0" drop; }
	chain out { type filter hook output priority -10; policy accept; oifname "eth0" drop; }
}
`, faultTable))
}

// DropIncoming makes the host drop every packet arriving on eth0: a server that has gone
// silent (queries are lost, nothing is refused). Heal lifts it.
func (h *Host) DropIncoming() error {
	return h.nft(fmt.Sprintf(`table inet %[1]s {
	chain in { type filter hook input priority -10; policy accept; iifname "eth0" drop; }
}
`, faultTable))
}

// Heal deletes the host's fault rules.
func (h *Host) Heal() error {
	out, err := h.Run("nft", "delete", "table", "inet", faultTable)
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// LinkDown takes the host's eth0 down (its address stays configured; its routes go).
func (h *Host) LinkDown() error { return h.link("down") }

// LinkUp brings eth0 back; the kernel restores the subnet's route.
func (h *Host) LinkUp() error { return h.link("up") }

func (h *Host) link(state string) error {
	out, err := h.Run("ip", "link", "set", "eth0", state)
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

func (h *Host) nft(ruleset string) error {
	cmd := h.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("host %s: nft -f: %w: %s", h.Name, err, out)
	}
	return nil
}
