#!/usr/bin/perl
# A minimal ESME written with Net::SMPP (Debian libnet-smpp-perl), driving our simulator.
# Usage: perl netsmpp_esme.pl PORT HEX_UCS2_TEXT
#
# Binds as transceiver (acme/secret), submits one GSM message and the UCS-2 text (hex of its
# UTF-16-BE octets) as 3 UDH-concatenated parts, all with registered_delivery 1, then reads
# until it has 4 receipts (answering each deliver_sm), and unbinds. One line per event.
use strict;
use warnings;
use Net::SMPP;

$| = 1;
my ($port, $hex) = @ARGV;
my $c = Net::SMPP->new_transceiver('127.0.0.1', port => $port, system_id => 'acme',
    password => 'secret', smpp_version => 0x34, async => 1)
    or die "bind failed: $!";
my $bind = $c->read_pdu() or die "no bind response";
print "BIND $bind->{status}\n";

my %common = (source_addr => 'PerlESME', source_addr_ton => 5, dest_addr_ton => 1,
    dest_addr_npi => 1, destination_addr => '85261234567', registered_delivery => 1);
$c->submit_sm(%common, short_message => 'Hello from Net::SMPP');
my $ucs2 = pack('H*', $hex);
my $size = 134;
my $total = int((length($ucs2) + $size - 1) / $size);
for my $i (1 .. $total) {
    my $udh = pack('CCCCCC', 5, 0, 3, 0x2A, $total, $i);
    $c->submit_sm(%common, esm_class => 0x40, data_coding => 8,
        short_message => $udh . substr($ucs2, ($i - 1) * $size, $size));
}
my ($acks, $receipts) = (0, 0);
while ($receipts < 1 + $total) {
    my $pdu = $c->read_pdu() or die "connection lost";
    if ($pdu->{cmd} == 0x80000004) {
        $acks++;
        print "SUBMIT_RESP $pdu->{status} $pdu->{message_id}\n";
    } elsif ($pdu->{cmd} == 0x00000005) {
        $receipts++;
        $c->deliver_sm_resp(seq => $pdu->{seq}, message_id => '');
        my $rid = $pdu->{receipted_message_id} // '';
        $rid =~ s/\0//g;
        print "RECEIPT $pdu->{esm_class} $rid $pdu->{short_message}\n";
    } elsif ($pdu->{cmd} == 0x00000015) {
        $c->enquire_link_resp(seq => $pdu->{seq});
    }
}
$c->unbind(async => 1);
print "DONE $acks $receipts\n";
