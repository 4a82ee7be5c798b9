#!/usr/bin/perl

# The decision lines an on-call engineer reads (issue 15, section 5):
#
#   - key=value fields, values quoted and escaped: a '"', a ", client: " or
#     a "status=" inside a reason or a place cannot end a value nor forge
#     a field; parsed, each field is what $device_auth_reason and the
#     other variables say;
#   - at most one line per serial and decision per device_auth_log_interval
#     (per place for requests without a certificate), the next one with
#     the count it left out (suppressed=N);
#   - the level of each decision: scanners (no_cert, invalid) at info while
#     clones stay at warn; inherited from http to server to location.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use DeviceAuth::Test qw(decision_lines);

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;

    device_auth_location $http_x_place;
    device_auth_log_level error;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        add_header X-Status $device_auth_status always;
        add_header X-Reason $device_auth_reason always;

        device_auth_log_level revoked notice;

        # every line: fields and escaping
        location / {
            device_auth on;
            device_auth_log_interval 0;
            device_auth_log_level warn;
            return 200 "$device_auth_status\n";
        }

        # one line per serial and decision per 2 s
        location /quiet {
            device_auth on;
            device_auth_log_interval 2s;
            device_auth_log_level warn;
            return 200 "$device_auth_status\n";
        }

        # scanners at info, clones at warn, the rest inherited
        location /levels {
            device_auth on;
            device_auth_log_interval 0;
            device_auth_log_level no_cert info;
            device_auth_log_level invalid info;
            device_auth_log_level duplicate warn;
            device_auth_duplicate_limit 1;
            return 200 "$device_auth_status\n";
        }
    }
}
EOF

$t->redis_start();
$t->run();

my $P = 'device_auth:';
my $sn = $t->serial('dev1');
my $signer = $t->fingerprint('signer1');

sub get {
    my (%a) = @_;
    my $place = delete $a{place};
    return $t->https_get(%a, headers => [['X-Place', $place // 'p']]);
}

# the decision lines written since the mark (polled: a line is written
# before the response is)
sub lines_since {
    my ($mark, $n) = @_;
    my $end = time() + 5;
    my @l;
    while (time() < $end) {
        @l = decision_lines($t->read_error_log($mark));
        return @l if @l >= $n;
        sleep(0.02);
    }
    return @l;
}

###############################################################################
# fields, quoted and escaped; forged fields stay inside their value

my $forged_reason = 'stolen" status=ok code=200 x="y, client: 6.6.6.6 \\ end';
my $forged_place = 'x" client: 1.2.3.4 status=ok serial="0123FFFFFFFFFFFFFF';

$t->redis_cli('SET', "$P\{$sn}:revoked", $forged_reason);

my $mark = $t->log_mark();
my $r = get(device => 'dev1', place => $forged_place);
is($r->{status}, 403, 'a revoked device: 403');

my @l = lines_since($mark, 1);
is(scalar @l, 1, 'one line');
my $l = $l[0] || {};

is_deeply([@$l{qw(action code status serial signer location)}],
          ['rejected', 403, 'revoked', $sn, $signer, $forged_place],
          'the fields: action, code, status, serial, signer, location '
          . '(a place with a quote and "client:" in it)');
is($l->{reason}, $r->{headers}{'x-reason'},
   'the reason read from the line is $device_auth_reason');
is($l->{reason}, 'stolen\x22 status=ok code=200 x=\x22y, client: 6.6.6.6 \x5c end',
   'the reason as Redis holds it, escaped once (quote, backslash)');
like($l->{tail}, qr/^, client: 127\.0\.0\.1, server: localhost, request: "GET \/ HTTP\/1\.1"/,
     'nginx\'s own fields follow the last one');
is($l->{level}, 'warn', 'at the location\'s level');

my ($raw) = $t->read_error_log($mark) =~ /(device_auth: device rejected: [^\n]*)/;
like($raw, qr/ location="x\\" client: 1\.2\.3\.4 status=ok serial=\\"0123FFFFFFFFFFFFFF" /,
     'the raw line: the place\'s quotes escaped');
is(scalar(() = $raw =~ /(?<![\\])"/g) % 2, 0, 'the raw line: quotes pair up');

# a certificate that failed: claimed serial and subject; control bytes

$mark = $t->log_mark();
$r = get(device => 'dev_inject', place => "a\x01b\tc\xc3\xa9");
@l = lines_since($mark, 1);
is(scalar @l, 1, 'CN with CR LF: one line');
is_deeply([@{ $l[0] || {} }{qw(code status location)}],
          [495, 'invalid', "a\x01b\tc\xc3\xa9"],
          'CN with CR LF: code, status; the place with control and '
          . 'non-ASCII bytes');
like($l[0]{subject} // '', qr/X-Injected/, 'CN with CR LF: the subject');
ok(exists $l[0]{reason} && !exists $l[0]{serial},
   'CN with CR LF: a reason, no serial as the device\'s');
unlike($t->read_error_log($mark), qr/[\x00-\x09\x0b-\x1f\x7f-\xff]/,
       'no control or non-ASCII byte in error.log');

# no certificate: no serial, no subject

$mark = $t->log_mark();
get(place => 'scanner-1');
@l = lines_since($mark, 1);
is(join(' ', map { "$_=$l[0]{$_}" } grep { !/^(tail|level|action)$/ }
             sort keys %{ $l[0] || {} }),
   'code=496 location=scanner-1 reason=no client certificate status=no_cert',
   'no certificate: code, status, location, reason only');

# a clone let through is "allowed"
$t->redis_cli('DEL', "$P\{$sn}:revoked");

###############################################################################
# at most one line per serial and decision per interval

$t->redis_cli('SET', "$P\{$sn}:revoked", 'quiet please');

$mark = $t->log_mark();
my $start = time();
my @st = map { get(device => 'dev1', path => '/quiet')->{status} } 1 .. 5;
is_deeply(\@st, [(403) x 5], 'a revoked device retrying: 403 each time');

# another device, and requests without a certificate from two places
$t->redis_cli('SET', "$P\{${\ $t->serial('dev2')}}:revoked", 'quiet too');
get(device => 'dev2', path => '/quiet') for 1 .. 2;
get(path => '/quiet', place => 'scan-a') for 1 .. 3;
get(path => '/quiet', place => 'scan-b') for 1 .. 2;
my $batch_end = time();

SKIP: {
    skip 'the machine is too slow for a 2 s interval', 6
        if time() - $start > 1.5;

    my @q = decision_lines($t->read_error_log($mark));
    is(scalar(grep { ($_->{serial} // '') eq $sn } @q), 1,
       'within the interval: one line for the serial and decision');
    is(scalar(grep { ($_->{serial} // '') eq $t->serial('dev2') } @q), 1,
       'another serial: its own line');
    is_deeply([map { $_->{location} } grep { $_->{status} eq 'no_cert' } @q],
              ['scan-a', 'scan-b'],
              'without a certificate: one line per place');
    ok(!grep({ exists $_->{suppressed} } @q),
       'the first lines leave nothing out yet');

    # past the interval of every first line: the next one says how many
    # it left out
    sleep(2.1 - (time() - $batch_end)) if time() - $batch_end < 2.1;

    $mark = $t->log_mark();
    get(device => 'dev1', path => '/quiet');
    get(path => '/quiet', place => 'scan-a');
    my @n = lines_since($mark, 2);
    my ($dev) = grep { ($_->{serial} // '') eq $sn } @n;
    my ($scan) = grep { ($_->{location} // '') eq 'scan-a' } @n;
    is($dev && $dev->{suppressed}, 4,
       'past the interval: the line says suppressed=4');
    is($scan && $scan->{suppressed}, 2,
       'past the interval: the place\'s line says suppressed=2');
}

# another decision for the same serial is a line of its own
$t->redis_cli('SET', "$P\{$sn}:revoked", 'quarantined: quiet');
$mark = $t->log_mark();
get(device => 'dev1', path => '/quiet');
@l = lines_since($mark, 1);
is($l[0] && $l[0]{status}, 'quarantined',
   'another decision of the serial: its own line');
$t->redis_cli('DEL', "$P\{$sn}:revoked", "$P\{${\ $t->serial('dev2')}}:revoked");

###############################################################################
# the level of each decision

$mark = $t->log_mark();
get(path => '/levels', place => 'l1');                  # no_cert: info
get(device => 'dev_expired', path => '/levels', place => 'l1');  # invalid
$t->redis_cli('SET', "$P\{$sn}:revoked", 'leveled');
get(device => 'dev1', path => '/levels', place => 'l1');  # revoked: server
$t->redis_cli('DEL', "$P\{$sn}:revoked");
get(device => 'dev2', path => '/levels', place => "l$_") for 1 .. 2;  # clone
$t->redis_cli('SET', "${P}signer:$signer:revoked", 'leveled signer');
get(device => 'dev2', path => '/levels', place => 'l2');  # signer_revoked
$t->redis_cli('DEL', "${P}signer:$signer:revoked");

@l = lines_since($mark, 5);
my %level = map { ($_->{status} => $_->{level}) } @l;
is_deeply(\%level, { no_cert => 'info', invalid => 'info', revoked => 'notice',
                     duplicate => 'warn', signer_revoked => 'error' },
          'levels: scanners at info (the location), a clone at warn (the '
          . 'location), revoked at notice (the server), signer_revoked at '
          . 'error (http, for all)')
    or diag(explain \@l);

$t->check_error_log();

done_testing();
