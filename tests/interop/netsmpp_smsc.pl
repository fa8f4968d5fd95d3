#!/usr/bin/perl
# A minimal SMSC written with Net::SMPP (Debian libnet-smpp-perl), for interop tests of our
# ESME client. Usage: perl netsmpp_smsc.pl PORT
#
# Accepts one connection; answers a bind from acme/secret (ESME_RINVPASWD otherwise), answers
# every submit_sm with message id perlNNNN and, when registered_delivery asks for it, sends an
# SMPP 3.4 Appendix B receipt: odd messages with receipted_message_id + message_state TLVs,
# even ones as text only (as many carriers do). Logs one line per event on stdout.
use strict;
use warnings;
use Net::SMPP;

$| = 1;
my ($port) = @ARGV;
my $srv = Net::SMPP->new_listen('127.0.0.1', port => $port, smpp_version => 0x34)
    or die "cannot listen on $port: $!";
print "LISTENING $port\n";
my $c = $srv->accept or die "accept failed: $!";
my $n = 0;
my %bind_resp = (
    0x00000001 => 'bind_receiver_resp',
    0x00000002 => 'bind_transmitter_resp',
    0x00000009 => 'bind_transceiver_resp',
);

while (my $pdu = $c->read_pdu()) {
    my $cmd = $pdu->{cmd};
    if (exists $bind_resp{$cmd}) {
        my $ok = $pdu->{system_id} eq 'acme' && $pdu->{password} eq 'secret';
        my $method = $bind_resp{$cmd};
        $c->$method(system_id => 'perlsmsc', seq => $pdu->{seq}, status => $ok ? 0 : 0x0E);
        print "BIND $pdu->{system_id} ", ($ok ? "OK" : "REFUSED"), "\n";
    } elsif ($cmd == 0x00000004) {    # submit_sm
        $n++;
        my $id = sprintf('perl%04d', $n);
        $c->submit_sm_resp(message_id => $id, seq => $pdu->{seq});
        printf "SUBMIT %s %d %d %d %s %s\n", $id, $pdu->{esm_class}, $pdu->{data_coding},
            $pdu->{registered_delivery}, $pdu->{destination_addr},
            unpack('H*', $pdu->{short_message});
        if ($pdu->{registered_delivery} & 1) {
            my $text = "id:$id sub:001 dlvrd:001 submit date:2501021504 "
                . "done date:2501021505 stat:DELIVRD err:000 text:";
            my @tlvs = $n % 2
                ? (receipted_message_id => "$id\0", message_state => pack('C', 2))
                : ();
            $c->deliver_sm(
                source_addr      => $pdu->{destination_addr},
                destination_addr => $pdu->{source_addr},
                esm_class        => 0x04,
                short_message    => $text,
                @tlvs,
                async            => 1,
            );
        }
    } elsif ($cmd == 0x80000005) {    # deliver_sm_resp
        print "DELIVER_RESP $pdu->{status}\n";
    } elsif ($cmd == 0x00000015) {    # enquire_link
        $c->enquire_link_resp(seq => $pdu->{seq});
    } elsif ($cmd == 0x00000006) {    # unbind
        $c->unbind_resp(seq => $pdu->{seq});
        print "UNBIND\n";
        last;
    } else {
        $c->generic_nack(seq => $pdu->{seq}, status => 3);
    }
}
print "BYE\n";
