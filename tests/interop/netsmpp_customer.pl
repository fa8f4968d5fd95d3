#!/usr/bin/perl
# A customer's ESME written with Net::SMPP (Debian libnet-smpp-perl), bound to our SMPP server.
# Usage: perl netsmpp_customer.pl PORT SYSTEM_ID PASSWORD HEX_UCS2_TEXT
#
# Binds as transceiver, submits one GSM message and the UCS-2 text (hex of its UTF-16-BE
# octets) as 3 UDH-concatenated parts (sent back to back: our server answers the parts only
# once the whole message is stored), all with registered_delivery 1, then reads until it has a
# submit_sm_resp for every submit and one receipt per message, answering each deliver_sm, and
# unbinds. One line per event on stdout.
use strict;
use warnings;
use Net::SMPP;

$| = 1;
my ($port, $system_id, $password, $hex) = @ARGV;
my $c = Net::SMPP->new_transceiver('127.0.0.1', port => $port, system_id => $system_id,
    password => $password, smpp_version => 0x34, async => 1)
    or die "bind failed: $!";
my $bind = $c->read_pdu() or die "no bind response";
print "BIND $bind->{status}\n";
exit 1 if $bind->{status};

my %common = (source_addr => 'PerlESME', source_addr_ton => 5, dest_addr_ton => 1,
    dest_addr_npi => 1, registered_delivery => 1);
$c->submit_sm(%common, destination_addr => '85261234561',
    short_message => 'Hello from Net::SMPP, a customer');
my $ucs2 = pack('H*', $hex);
my $size = 134;
my $total = int((length($ucs2) + $size - 1) / $size);
for my $i (1 .. $total) {
    my $udh = pack('CCCCCC', 5, 0, 3, 0x2A, $total, $i);
    $c->submit_sm(%common, destination_addr => '85261234562', esm_class => 0x40,
        data_coding => 8, short_message => $udh . substr($ucs2, ($i - 1) * $size, $size));
}
my ($acks, $receipts) = (0, 0);
while ($acks < 1 + $total || $receipts < 2) {
    my $pdu = $c->read_pdu() or die "connection lost";
    if ($pdu->{cmd} == 0x80000004) {
        $acks++;
        print "SUBMIT_RESP $pdu->{status} $pdu->{message_id}\n";
    } elsif ($pdu->{cmd} == 0x00000005) {
        $receipts++;
        $c->deliver_sm_resp(seq => $pdu->{seq}, message_id => '');
        my $rid = $pdu->{receipted_message_id} // '';
        $rid =~ s/\0//g;
        my $state = defined $pdu->{message_state} ? unpack('C', $pdu->{message_state}) : -1;
        print "RECEIPT $pdu->{esm_class} $rid $state $pdu->{short_message}\n";
    } elsif ($pdu->{cmd} == 0x00000015) {
        $c->enquire_link_resp(seq => $pdu->{seq});
    }
}
$c->unbind();
my $resp = $c->read_pdu();
print "UNBIND ", ($resp ? $resp->{status} : 'none'), "\n";
print "DONE $acks $receipts\n";
