#!/usr/bin/perl

# build/device-auth, the operator's commands, against a real redis-server
# and a real nginx edge: revoke, unrevoke, quarantine, release, register,
# unregister (arguments and --from files with CRLF, a byte order mark,
# headers, "sn" prefixes, lower case, CSV quoting, reasons with commas;
# every refusal, the summary, the exit status, the audit stream); list
# with 10,000 keys (a time bound), lint finding each kind of key an edge
# never reads, pins on the real Microchip certificates, count and show of
# the devices counted today; the address, prefix and password conventions.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use DeviceAuth::Test qw(cert_fingerprint);
use DeviceAuth::Manifest;

my $t = DeviceAuth::Test->new();
my $pki = $t->pki;
my $repo = $t->repo;

$t->write_conf(<<'EOF');
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        device_auth_location $http_x_place;
        device_auth_duplicate_limit 2;
        device_auth_duplicate_action quarantine;

        add_header X-Status $device_auth_status always;
        add_header X-Reason $device_auth_reason always;
        add_header X-Signer $device_auth_signer always;

        location / {
            device_auth on;
            return 200 "ok\n";
        }

        location /registry {
            device_auth on;
            device_auth_registry on;
            return 200 "ok\n";
        }
    }
}
EOF

my $port = $t->redis_start();
$t->run();

$ENV{DEVICE_AUTH_REDIS} = "127.0.0.1:$port";
delete $ENV{DEVICE_AUTH_PREFIX};
delete $ENV{REDISCLI_AUTH};

my $slow = $t->sanitizer ? 3 : 1;
my $user = getpwuid($<);
chomp(my $host = `hostname`);

sub cli { $t->redis_cli(@_) }
sub key { "device_auth:{$_[0]}:$_[1]" }
sub da { $t->device_auth_split(@_) }
sub lines { split /\n/, $_[0] // '' }

# a request of a device: "status $device_auth_status" (and the reason)
sub req {
    my ($dev, %o) = @_;
    my $r = $t->https_get(device => $dev, path => $o{path} || '/',
                          headers => [['X-Place', $o{place} || 'home']]);
    my $s = "$r->{status} " . ($r->{headers}{'x-status'} // '');
    return wantarray ? ($s, $r->{headers}{'x-reason'}, $r) : $s;
}

sub audit { $t->redis_stream('device_auth:audit') }

# the audit entries written since there were $n
sub audit_since {
    my ($n) = @_;
    my @a = audit();
    return @a[$n .. $#a];
}

sub naudit_since { my @a = audit_since($_[0]); return scalar @a }

my $summary = sub {
    my ($n, $done, $word, $unchanged, $refused, $dup, $kept) = @_;
    return "summary: $n entr" . ($n == 1 ? 'y' : 'ies') . ", $done $word, "
           . "$unchanged unchanged, "
           . (defined $kept ? "$kept kept with another value, " : '')
           . "$refused refused, $dup duplicate" . ($dup == 1 ? '' : 's');
};

my $NOT_SERIAL = 'refused: not a serial: 18 hex digits, "sn" before them '
                 . 'or not (--profile generic for other CNs)';

my $dev1 = 'dev1';
my $SN1 = $t->serial('dev1');
my $signer1 = $t->fingerprint('signer1');


###############################################################################
# the commands

my ($rc, $out, $err) = da('help');
like($out, qr/^  $_ /m, "help: lists $_")
    for qw(revoke unrevoke quarantine release register unregister list lint
           pins count);

($rc, $out, $err) = da('help', 'quarantine');
like($err, qr/^usage: device-auth quarantine SERIAL\.\.\. \| --from FILE  --for DURATION --reason TEXT /,
     'help quarantine: its arguments');

($rc, $out, $err) = da('revoke');
is($rc, 2, 'revoke, nothing to revoke: exit 2 (usage)');
like($err, qr/^usage: device-auth revoke /m, 'revoke, nothing: the usage');

($rc, $out, $err) = da('revoke', '--for', '1h', $SN1, '--reason', 'x');
is($rc, 2, 'revoke --for: exit 2');
like($err, qr/^device-auth revoke: revoke does not take --for$/m,
     'revoke --for: said');

($rc, $out, $err) = da('release', '--signer', $signer1);
is($rc, 2, 'release --signer: exit 2');

($rc, $out, $err) = da('quarantine', $SN1, '--reason', 'x');
is($rc, 2, 'quarantine without --for: exit 2');
like($err, qr/--for is required/, 'quarantine without --for: said');

for my $bad (qw(0 1x h 367d -5 1.5h 1h30x)) {
    ($rc, $out, $err) = da('quarantine', $SN1, '--for', $bad, '--reason',
                           'x');
    is($rc, 2, "quarantine --for $bad: exit 2");
}

($rc, $out, $err) = da('revoke', '--from', $t->testdir . '/nope.csv',
                       '--reason', 'x');
is($rc, 2, 'revoke --from a missing file: exit 2');
like($err, qr/cannot open ".*nope\.csv": No such file or directory/,
     'revoke --from a missing file: said');
is($out, '', 'revoke --from a missing file: nothing done');

($rc, $out, $err) = da('revoke', '--by', "a\tb", $SN1, '--reason', 'x');
is($rc, 2, 'revoke --by with a tab: exit 2');


###############################################################################
# revoke one device: the line, the edge, the audit

is(req($dev1), '200 ok', 'dev1: 200 ok before');

my $n = () = audit();
($rc, $out, $err) = da('revoke', "sn\L$SN1", '--reason', 'stolen, ticket 1',
                       '--by', 'alice');
is($rc, 0, 'revoke: exit 0') or diag($err);
is($out, "$SN1 revoked; not registered\n"
         . $summary->(1, 1, 'revoked', 0, 0, 0) . "\n",
   'revoke: "sn" and lower case give the serial; the line, the summary');
is(cli('GET', key($SN1, 'revoked')), 'stolen, ticket 1',
   'revoke: the reason is the value');
is(cli('TTL', key($SN1, 'revoked')), -1, 'revoke: no expiry');
my ($st, $xr) = req($dev1);
is("$st $xr", '403 revoked stolen, ticket 1',
   'revoke: the edge refuses dev1 at its next request, with the reason');

my @a = audit_since($n);
is(scalar @a, 1, 'revoke: one audit entry');
is_deeply({ map { $_ => $a[0]{$_} } grep { $_ ne 'id' } keys %{ $a[0] } },
          { what => 'revoke', serial => $SN1, key => key($SN1, 'revoked'),
            user => $user, by => 'alice', host => $host,
            source => 'argument 1', reason => 'stolen, ticket 1' },
          'revoke: the audit entry: what, which, who, --by, where, why');
my ($now) = cli('TIME');
my ($ms) = $a[0]{id} =~ /^(\d+)-/;
ok(abs($ms / 1000 - $now) < 60, 'revoke: the entry id is when (Redis time)');

($rc, $out) = da('revoke', $SN1, '--reason', 'stolen, ticket 1');
is($out, "$SN1 already revoked, the same reason; not registered\n"
         . $summary->(1, 0, 'revoked', 1, 0, 0) . "\n",
   'revoke again: unchanged');
is(naudit_since($n), 1, 'revoke again: no audit entry');

($rc, $out) = da('revoke', $SN1, '--reason', 'stolen, ticket 2');
like($out, qr/^$SN1 revoked, replacing "stolen, ticket 1"; not registered$/m,
     'revoke, another reason: replaced, said');
@a = audit_since($n);
is($a[-1]{previous}, 'stolen, ticket 1', 'revoke: the audit keeps what was');

# a quarantine becomes a revocation, without expiry
cli('SET', key($SN1, 'revoked'), 'quarantined: by hand', 'EX', 600);
($rc, $out) = da('revoke', $SN1, '--reason', 'stolen for good');
like($out, qr/^$SN1 revoked, was quarantined: "quarantined: by hand" \((9m5\d|10m0)s left\); not registered$/m,
     'revoke of a quarantine: said, with its time left');
is(cli('TTL', key($SN1, 'revoked')), -1, 'revoke of a quarantine: no expiry');
@a = audit_since($n);
like($a[-1]{previous_ttl_ms}, qr/^\d+$/,
     'revoke of a quarantine: the audit keeps its time left');

($rc, $out, $err) = da('revoke', $SN1, '--reason', 'quarantined: sneaky');
is($rc, 1, 'revoke with a "quarantined:" reason: exit 1');
like($out, qr/^$SN1 refused: a reason starting "quarantined:" makes a quarantine: device-auth quarantine --for$/m,
     'revoke with a "quarantined:" reason: refused');
is(cli('GET', key($SN1, 'revoked')), 'stolen for good',
   'revoke refused: the value stays');

($rc, $out, $err) = da('revoke', $SN1);
is($rc, 1, 'revoke without a reason: exit 1');
like($out, qr/^$SN1 refused: no reason: a reason column, or --reason$/m,
     'revoke without a reason: refused');

# the registration, as the line shows it: by hand, from a manifest
my $m = DeviceAuth::Manifest->new($t);
my $log = $m->log_signer('log');
my $reel = $m->write('reel.json',
                     $m->entry(device => $t->pki_file('dev1'), signer => $log));
($rc, $out, $err) = da('import-manifest', '--roots', "$pki/roots.pem",
                       '--log-signers', $log->{cert}, $reel);
is($rc, 0, 'dev1 imported from a manifest') or diag($out, $err);
my $spki1 = DeviceAuth::Manifest::spki_sha256($t->pki_file('dev1.pem'));

($rc, $out) = da('revoke', $SN1, '--reason', 'key shown');
like($out, qr/^$SN1 revoked, replacing "stolen for good"; registered, key spki_sha256 $spki1$/m,
     'revoke: the chip\'s key the registration records');

my $SN2 = $t->serial('dev2');
cli('SET', key($SN2, 'registered'), 'batch-7');
($rc, $out) = da('revoke', $SN2, '--reason', 'x');
like($out, qr/^$SN2 revoked; registered by hand: "batch-7"$/m,
     'revoke: a registration by hand');
cli('DEL', key($SN2, 'registered'));
cli('HSET', key($SN2, 'registered'), 'a', 'b');
($rc, $out) = da('revoke', $SN2, '--reason', 'y');
like($out, qr/^$SN2 revoked, replacing "x"; registered: cannot tell: "WRONGTYPE /m,
     'revoke: a registration of the wrong type');
cli('DEL', key($SN2, 'registered'), key($SN2, 'revoked'));

# a key of the wrong type: refused, nothing written
cli('HSET', key($SN2, 'revoked'), 'a', 'b');
($rc, $out) = da('revoke', $SN2, '--reason', 'z');
is($rc, 1, 'revoke over a hash: exit 1');
like($out, qr/^$SN2 refused: redis: WRONGTYPE .*\(device-auth lint\)$/m,
     'revoke over a hash: refused, said');
cli('DEL', key($SN2, 'revoked'));

# the audit and the change go together: an audit key that cannot take
# the entry stops the change
cli('RENAME', 'device_auth:audit', 'device_auth:audit.saved');
cli('SET', 'device_auth:audit', 'not a stream');
($rc, $out) = da('revoke', $SN2, '--reason', 'no audit');
is($rc, 1, 'revoke, the audit stream unwritable: exit 1');
like($out, qr/^$SN2 refused: redis: WRONGTYPE /m,
     'revoke, the audit stream unwritable: refused');
is(cli('EXISTS', key($SN2, 'revoked')), 0,
   'revoke, the audit stream unwritable: nothing written');
cli('DEL', 'device_auth:audit');
cli('RENAME', 'device_auth:audit.saved', 'device_auth:audit');


###############################################################################
# --from: what a file may hold, and every refusal

# no header; a byte order mark, CRLF, blank lines, comments, spaces,
# separators , ; and tab, quotes, reasons with commas, trailing empty
# fields; then each kind of line that is refused
my $long = 'x' x 5000;
$t->write_file('f1.csv', join '', map { "$_\r\n" }
    "\xEF\xBB\xBF0123A1B2C3D4E5F6B1",
    'sn0123a1b2c3d4e5f6b2,stolen, ticket 2',
    '',
    '# a comment',
    '  0123A1B2C3D4E5F6B3 ;  "quoted; ""reason"""  ',
    "0123A1B2C3D4E5F6B4\t\"tab, separated\"",
    'SN0123A1B2C3D4E5F6B5,,',
    '0123A1B2C3D4E5F6B,short',
    '0123A1B2C3D4E5F6BG,not hex',
    "0123A1B2C3D4E5F6B6,bad\x01reason",
    '0123A1B2C3D4E5F6B7,"unterminated',
    '"0123A1B2C3D4E5F6B8"x,after',
    '0123A1B2C3D4E5F6B9,quarantined: sneaky',
    '0123a1b2c3d4e5f6b1,again',
    "0123A1B2C3D4E5F6BA,$long",
    "0123A1B2C3D4E5F6BB,nul\0byte");
my $f1 = $t->testdir . '/f1.csv';

my @B = map { "0123A1B2C3D4E5F6B$_" } 1 .. 9;
cli('DEL', map { key($_, 'revoked') } @B);
$n = () = audit();

($rc, $out, $err) = da('revoke', '--from', $f1, '--reason', 'default');
is($rc, 1, '--from: exit 1, entries were refused');
is($err, '', '--from: nothing on stderr');
is_deeply([lines($out)], [
    "$f1:1 $B[0] revoked; not registered",
    "$f1:2 $B[1] revoked; not registered",
    "$f1:5 $B[2] revoked; not registered",
    "$f1:6 $B[3] revoked; not registered",
    "$f1:7 $B[4] revoked; not registered",
    "$f1:8 \"0123A1B2C3D4E5F6B\" $NOT_SERIAL",
    "$f1:9 \"0123A1B2C3D4E5F6BG\" $NOT_SERIAL",
    "$f1:10 $B[5] refused: the reason holds a control character (\\x01)",
    "$f1:11 \"0123A1B2C3D4E5F6B7,\\x22unterminated\" refused: a quote is not "
    . 'closed',
    "$f1:12 \"\\x220123A1B2C3D4E5F6B8\\x22x,after\" refused: text after a "
    . 'closing quote',
    "$f1:13 $B[8] refused: a reason starting \"quarantined:\" makes a "
    . 'quarantine: device-auth quarantine --for',
    "$f1:14 $B[0] duplicate of $f1:1, skipped",
    "$f1:15 \"0123A1B2C3D4E5F6BA," . ('x' x 61) . '" refused: longer than '
    . '4096 bytes',
    "$f1:16 \"0123A1B2C3D4E5F6BB,nul\" refused: a NUL byte: not a text file",
    $summary->(14, 5, 'revoked', 0, 8, 1),
], '--from: a line per entry, the summary');

is_deeply([map { cli('GET', key($_, 'revoked')) } @B[0 .. 4]],
          ['default', 'stolen, ticket 2', 'quoted; "reason"',
           'tab, separated', 'default'],
          '--from: the reasons written: --reason, the column with its '
          . 'commas, unquoted');
is(scalar(grep { cli('EXISTS', key($_, 'revoked')) } @B[5 .. 8]), 0,
   '--from: nothing written for the refused');
is(cli('EXISTS', 'device_auth:{0123a1b2c3d4e5f6b2}:revoked',
       'device_auth:{sn0123a1b2c3d4e5f6b2}:revoked'), 0,
   '--from: no key with a lower-case or "sn" serial');

@a = audit_since($n);
is_deeply([map { "$_->{serial} $_->{source} $_->{reason}" } @a], [
    "$B[0] $f1:1 default", "$B[1] $f1:2 stolen, ticket 2",
    "$B[2] $f1:5 quoted; \"reason\"", "$B[3] $f1:6 tab, separated",
    "$B[4] $f1:7 default",
], '--from: an audit entry per change, with its file and line');

my $devB2 = $t->make_device(name => 'b2', serial => $B[1]);
($st, $xr) = req($devB2);
is("$st $xr", '403 revoked stolen, ticket 2',
   '--from: the edge refuses a device of the file, with its reason');

# a header: its names choose the columns
$t->write_file('f2.csv', join "\n",
    'Reason;Device Serial;Ticket',
    'stolen;0123A1B2C3D4E5F6C1;T1',
    ';sn0123a1b2c3d4e5f6c2;T2',
    '"lost; twice";0123A1B2C3D4E5F6C3',
    'gone;0123A1B2C3D4E5F6C4;T4;extra',
    '');
my $f2 = $t->testdir . '/f2.csv';
my @C = map { "0123A1B2C3D4E5F6C$_" } 1 .. 4;

($rc, $out) = da('revoke', '--from', $f2, '--reason', 'default');
is($rc, 1, '--from with a header: exit 1');
is_deeply([lines($out)], [
    "$f2:1 header: id in column 2, value in column 1",
    "$f2:2 $C[0] revoked; not registered",
    "$f2:3 $C[1] revoked; not registered",
    "$f2:4 $C[2] revoked; not registered",
    "$f2:5 \"gone;0123A1B2C3D4E5F6C4;T4;extra\" refused: 4 fields where the "
    . 'header has 3: quote a field that holds a ";"',
    $summary->(4, 3, 'revoked', 0, 1, 0),
], '--from with a header: its columns, a line with a field too many');
is_deeply([map { cli('GET', key($_, 'revoked')) } @C[0 .. 2]],
          ['stolen', 'default', 'lost; twice'],
          '--from with a header: the reasons of its column');

# a header of unknown names: the first two columns; and stdin
($rc, $out) = $t->device_auth('unrevoke', '--from', $f1, '--from', $f2,
                              '--quiet');
like($out, qr/^summary: 18 entries, 8 unrevoked, 1 unchanged, 8 refused, 1 duplicate$/m,
     'unrevoke --from two files, --quiet: the summary');
unlike($out, qr/ unrevoked, was /, 'unrevoke --quiet: only the refusals');

my $cli = $t->cli_binary;
$out = `printf 'name,why\\n0123A1B2C3D4E5F6D1,from stdin\\n' | $cli revoke --from - 2>&1`;
is($out, "stdin:1 header: id in column 1, value in column 2\n"
         . "stdin:2 0123A1B2C3D4E5F6D1 revoked; not registered\n"
         . $summary->(1, 1, 'revoked', 0, 0, 0) . "\n",
   '--from -: stdin, a header of other names');
is(cli('GET', key('0123A1B2C3D4E5F6D1', 'revoked')), 'from stdin',
   '--from -: written');

# --dry-run: the same lines, nothing written
$n = () = audit();
($rc, $out) = da('unrevoke', '0123A1B2C3D4E5F6D1', '0123A1B2C3D4E5F6D2',
                 '--dry-run');
is($out, "0123A1B2C3D4E5F6D1 dry run: unrevoked, was \"from stdin\"\n"
         . "0123A1B2C3D4E5F6D2 dry run: not revoked\n"
         . $summary->(2, 1, 'unrevoked', 1, 0, 0)
         . "; dry run: nothing written\n", '--dry-run: what it would do');
is(cli('GET', key('0123A1B2C3D4E5F6D1', 'revoked')), 'from stdin',
   '--dry-run: nothing written');
is(naudit_since($n), 0, '--dry-run: no audit entry');

# a file with nothing in it
$t->write_file('empty.csv', "serial\r\n\r\n# none\r\n");
($rc, $out, $err) = da('revoke', '--from', $t->testdir . '/empty.csv',
                       '--reason', 'x');
is($rc, 2, '--from a file without a serial: exit 2');
like($err, qr/no serial given/, '--from a file without a serial: said');

# profile generic: CNs as they are
($rc, $out) = da('revoke', 'meter-0042', '--reason', 'x');
is($rc, 1, 'a generic CN without --profile generic: refused');
($rc, $out) = da('revoke', 'meter-0042', 'sn0123A1B2C3D4E5F6D3',
                 '--reason', 'x', '--profile', 'generic');
is($out, "meter-0042 revoked; not registered\n"
         . "sn0123A1B2C3D4E5F6D3 revoked; not registered\n"
         . $summary->(2, 2, 'revoked', 0, 0, 0) . "\n",
   '--profile generic: the CN as it is, "sn" and all');
cli('DEL', key('meter-0042', 'revoked'), key('sn0123A1B2C3D4E5F6D3', 'revoked'),
    key('0123A1B2C3D4E5F6D1', 'revoked'));


# whatever a file holds, every line that is not blank nor a comment gets
# exactly one line of output, and the summary adds them up: random files
# of the pieces spreadsheets and typos are made of (a fixed seed)
{
    srand(15);
    my @pieces = ('0123A1B2C3D4E5F6E1', '0123a1b2c3d4e5f6e2', 'sn0123A1B2C3D4E5F6E3',
                  'SN0123a1b2c3d4e5f6e4', '0123A1B2C3D4E5F6E', 'serial',
                  'Serial Number', 'reason', ',', ',', ';', "\t", '"', '""',
                  ' ', '  ', "\r", 'stolen, ticket 5', 'quarantined: x',
                  "\x01", "\0", '#', 'x' x 300, "\xEF\xBB\xBF", "\xC3\xA9");
    my ($bad, $files) = (0, 80);

    for my $i (1 .. $files) {
        my @lines = map { join '', map { $pieces[rand @pieces] }
                                   1 .. int(rand 6) } 1 .. 1 + int(rand 8);
        my $text = join "\n", @lines;
        $text .= "\n" if rand() < 0.5;
        $t->write_file('rand.csv', $text);
        my $f = $t->testdir . '/rand.csv';

        my ($rc, $out, $err) = da('revoke', '--from', $f, '--reason', 'r',
                                  '--dry-run');

        # the lines the tool reads as entries
        my (@want, $n);
        for my $l (split /\n/, $text, -1) {
            $n++;
            last if $n == @lines + 1 && $l eq '';
            $l =~ s/^\xEF\xBB\xBF// if $n == 1;
            $l =~ s/[\r\n \t]+$//;
            $l =~ s/^[ \t]+//;
            push @want, $n if $l ne '' && $l !~ /^#/;
        }

        my @got = lines($out);
        my %kind;
        for (@got) {
            $kind{ / header: / ? 'header'
                   : / dry run: revoked/ ? 'done'
                   : / dry run: already / ? 'unchanged'
                   : / refused: / ? 'refused'
                   : / duplicate of / ? 'duplicate'
                   : /^summary: / ? 'summary' : 'other' }++;
        }
        my $sum = $kind{summary} ? pop @got : '';
        my @num = map { /^\Q$f\E:(\d+) / ? $1 : -1 } @got;
        my $entries = @want - ($kind{header} // 0);

        my $ok = "@num" eq "@want" && !$kind{other}
                 && ($kind{header} // 0) <= 1
                 && (!$kind{header} || $got[0] =~ / header: /);

        if ($entries == 0) {
            # nothing to do: exit 2, said; a header line still shown
            $ok &&= $rc == 2 && !$kind{summary}
                    && $err =~ /^device-auth revoke: no serial given/;
        } else {
            $ok &&= $err eq ''
                    && $rc == (($kind{refused} // 0) > 0 ? 1 : 0)
                    && $sum eq $summary->($entries, $kind{done} // 0,
                                          'revoked', $kind{unchanged} // 0,
                                          $kind{refused} // 0,
                                          $kind{duplicate} // 0)
                               . '; dry run: nothing written';
        }
        next if $ok;
        $bad++;
        diag("file $i: " . join('|', map { s/([^\x20-\x7e])/sprintf '\\x%02X', ord $1/ger } @lines)
             . "\nexit $rc\n$out$err");
        last if $bad > 3;
    }

    is($bad, 0, "--from: $files random files, every line accounted for");
}


###############################################################################
# quarantine, release, unrevoke, with the edge
###############################################################################
# quarantine, release, unrevoke, with the edge

cli('DEL', key($SN1, 'revoked'), key($SN1, 'seen'));
is(req($dev1), '200 ok', 'dev1 let in again');

($rc, $out) = da('quarantine', $SN1, '--for', '1h30m', '--reason',
                 'suspicious');
is($out, "$SN1 quarantined for 1h30m0s\n"
         . $summary->(1, 1, 'quarantined', 0, 0, 0) . "\n",
   'quarantine: the line');
is(cli('GET', key($SN1, 'revoked')), 'quarantined: suspicious',
   'quarantine: the value says so');
my $ttl = cli('TTL', key($SN1, 'revoked'));
ok($ttl > 5400 - 60 && $ttl <= 5400, "quarantine: the TTL ($ttl s)");
($st, $xr) = req($dev1);
is("$st $xr", '403 quarantined quarantined: suspicious',
   'quarantine: the edge says quarantined');
@a = audit();
is_deeply([@{ $a[-1] }{qw(what serial reason ttl_ms)}],
          ['quarantine', $SN1, 'quarantined: suspicious', 5400000],
          'quarantine: the audit entry, with its duration');

for (['90', 90], ['30m', 1800], ['2w', 14 * 86400]) {
    da('quarantine', $SN1, '--for', $_->[0], '--reason',
       'quarantined: again');
    my $ttl = cli('TTL', key($SN1, 'revoked'));
    ok($ttl > $_->[1] - 60 && $ttl <= $_->[1], "--for $_->[0]: $ttl s");
}
is(cli('GET', key($SN1, 'revoked')), 'quarantined: again',
   'quarantine: a reason that says so is not said twice');

cli('SET', key($SN1, 'revoked'), 'stolen');
($rc, $out) = da('quarantine', $SN1, '--for', '1h', '--reason', 'x');
is($rc, 1, 'quarantine of a revoked device: exit 1');
like($out, qr/^$SN1 refused: revoked, not quarantined: "stolen": a quarantine never replaces a revocation \(device-auth unrevoke first\)$/m,
     'quarantine of a revoked device: refused');
is(cli('TTL', key($SN1, 'revoked')), -1,
   'quarantine of a revoked device: the revocation keeps no expiry');

($rc, $out) = da('release', $SN1);
is($rc, 1, 'release of a revocation: exit 1');
like($out, qr/^$SN1 refused: revoked, not quarantined: "stolen": release lifts only quarantines \(device-auth unrevoke lifts a revocation\)$/m,
     'release of a revocation: refused');
is(req($dev1), '403 revoked', 'release of a revocation: still revoked');
cli('DEL', key($SN1, 'revoked'));

# the edge quarantines dev1 as a clone: places A, B, C with a limit of 2
sub clone {
    my ($dev, $sn) = @_;
    cli('DEL', key($sn, 'seen'), key($sn, 'revoked'), key($sn, 'evrl'));
    return join ',', map { (req($dev, place => $_))[0] } qw(A B C);
}

is(clone($dev1, $SN1), '200 ok,200 ok,403 quarantined',
   'the edge quarantines dev1 at its third place');

# what the runbook said before: DEL of :revoked alone
cli('DEL', key($SN1, 'revoked'));
is(req($dev1, place => 'C'), '403 quarantined',
   'DEL of :revoked alone: quarantined again at the next request');

$n = () = audit();
($rc, $out) = da('release', $SN1, '--reason', 'moved, ticket 9');
is($rc, 0, 'release: exit 0');
like($out, qr/^$SN1 released, was "quarantined: cloned device seen at 3 places within 600s: C, B, A" \(\d+m\d+s left\); 3 places forgotten\n\Q${\ $summary->(1, 1, 'released', 0, 0, 0)}\E\n\z/,
     'release: the quarantine the edge wrote, its places');
is(cli('EXISTS', key($SN1, 'revoked'), key($SN1, 'seen')), 0,
   'release: both keys gone');
is(join(',', map { (req($dev1, place => $_))[0] } qw(C C A)),
   '200 ok,200 ok,200 ok',
   'release: the edge lets dev1 in at its next request, and does not '
   . 'quarantine it again');
@a = audit_since($n);
is_deeply([@{ $a[0] }{qw(what serial reason places)}],
          ['release', $SN1, 'moved, ticket 9', 3],
          'release: the audit entry, the places forgotten');

($rc, $out) = da('release', $SN1);
like($out, qr/^$SN1 not quarantined; 2 places forgotten$/m,
     'release, not quarantined: the places only');
($rc, $out) = da('release', $SN1);
like($out, qr/^$SN1 not quarantined, no places to forget$/m,
     'release of nothing: unchanged');

# unrevoke of the edge's quarantine: the places go too
is(clone($dev1, $SN1), '200 ok,200 ok,403 quarantined',
   'the edge quarantines dev1 again');
($rc, $out) = da('unrevoke', $SN1);
like($out, qr/^$SN1 unrevoked, was quarantined: "quarantined: cloned device [^"]*" \(\d+m\d+s left\); 3 places forgotten$/m,
     'unrevoke of a quarantine: its places forgotten');
is(join(',', map { (req($dev1, place => $_))[0] } qw(C A)),
   '200 ok,200 ok', 'unrevoke of a quarantine: let in, not quarantined again');
cli('DEL', key($SN1, 'seen'));

($rc, $out) = da('unrevoke', $SN1);
like($out, qr/^$SN1 not revoked\n/, 'unrevoke of nothing: unchanged');
is($rc, 0, 'unrevoke of nothing: exit 0');


###############################################################################
# register, unregister, with the edge's registry

my $SN3 = $t->serial('dev3');
cli('DEL', key($SN2, 'registered'), key($SN3, 'registered'));
is(req('dev2', path => '/registry'), '403 unregistered', 'dev2 unregistered');

$t->write_file('batch.csv', "serial,batch\r\n$SN2\r\n\L$SN3\E,batch-9\r\n");
my $fb = $t->testdir . '/batch.csv';
($rc, $out) = da('register', '--from', $fb, '--batch', 'batch-8');
is($out, "$fb:1 header: id in column 1, value in column 2\n"
         . "$fb:2 $SN2 registered\n$fb:3 $SN3 registered\n"
         . $summary->(2, 2, 'registered', 0, 0, 0, 0) . "\n",
   'register --from: the lines');
is_deeply([map { cli('GET', key($_, 'registered')) } $SN2, $SN3],
          ['batch-8', 'batch-9'], 'register: --batch, or its column');
is(req('dev2', path => '/registry'), '200 ok', 'register: dev2 let in');

($rc, $out) = da('register', $SN2, '--batch', 'batch-10');
like($out, qr/^$SN2 already registered, other value kept: "batch-8" \(--replace replaces it\)$/m,
     'register over another value: kept');
is($rc, 0, 'register, kept: exit 0');
($rc, $out) = da('register', $SN2, '--batch', 'batch-10', '--replace');
like($out, qr/^$SN2 registered, replacing "batch-8"$/m,
     'register --replace: replaced, said');

($rc, $out) = da('register', $SN1, '--batch', 'batch-10', '--replace');
is($rc, 1, 'register over an import: exit 1');
like($out, qr/^$SN1 refused: registered with the chip's key: "manifest=[^"]* spki_sha256=$spki1"; /m,
     'register over an import: refused even with --replace');

($rc, $out) = da('register', $SN3, '--batch', 'spki_sha256=ABC');
like($out, qr/^$SN3 refused: the batch is neither free text nor the format of an import: /m,
     'register with a malformed import value: refused');

($rc, $out) = da('unregister', $SN2, '--reason', 'scrapped');
like($out, qr/^$SN2 unregistered, was "batch-10"$/m, 'unregister: said');
is(req('dev2', path => '/registry'), '403 unregistered',
   'unregister: the edge refuses dev2');
@a = audit();
is_deeply([@{ $a[-1] }{qw(what serial reason previous)}],
          ['unregister', $SN2, 'scrapped', 'batch-10'],
          'unregister: the audit entry');


###############################################################################
# signers: the id as openssl prints it

my $fp = `openssl x509 -in $pki/signer1.pem -noout -fingerprint -sha256`;
chomp $fp;
like($fp, qr/Fingerprint=([0-9A-F]{2}:){31}[0-9A-F]{2}$/,
     'openssl prints the signer id with colons, upper case');

($rc, $out) = da('revoke', '--signer', $fp, '--reason', 'signer retired');
is($out, "$signer1 revoked\n" . $summary->(1, 1, 'revoked', 0, 0, 0) . "\n",
   'revoke --signer: the id canonical');
($st, $xr) = req($dev1);
is("$st $xr", '403 signer_revoked signer retired',
   'revoke --signer: the edge refuses its devices');
is(req('dev3'), '200 ok', 'revoke --signer: not another signer\'s');

($rc, $out) = da('revoke', '--signer', '--compromised', $signer1,
                 '--reason', 'key leaked');
like($out, qr/^$signer1 marked compromised\nsummary: 1 entry, 1 marked compromised, /,
     'revoke --signer --compromised: marked');

($rc, $out, $err) = da('list', 'signers');
is_deeply([sort(lines($out))],
          ["$signer1\tcompromised\t-\t\"key leaked\"",
           "$signer1\trevoked\t-\t\"signer retired\""],
          'list signers: both keys');

($rc, $out) = da('unrevoke', '--signer', uc $signer1);
like($out, qr/^$signer1 unrevoked, was "signer retired"$/m,
     'unrevoke --signer: upper case accepted');
($st, $xr) = req('dev2');
is($st, '403 signer_compromised',
   'the signer compromised: its unregistered device is refused');
($rc, $out) = da('unrevoke', '--signer', '--compromised', $signer1);
like($out, qr/^$signer1 compromised mark lifted, was "key leaked"$/m,
     'unrevoke --signer --compromised');
is(req('dev2'), '200 ok', 'the signer in service again');

($rc, $out) = da('revoke', '--signer', $SN1, '--reason', 'x');
like($out, qr/^"$SN1" refused: not a signer id: 64 hex digits/m,
     'revoke --signer of a serial: refused');
@a = audit();
is_deeply([@{ $a[-1] }{qw(what signer key)}],
          ['unrevoke', $signer1, "device_auth:signer:$signer1:compromised"],
          'the audit of a signer change names the signer and the key');


###############################################################################
# list: 10,000 keys

cli('EVAL', q{
    for i = 1, 9000 do
        redis.call('SET', string.format('device_auth:{0124%014X}:revoked', i),
                   'stolen, lot ' .. i)
    end
    for i = 1, 1000 do
        redis.call('SET', string.format('device_auth:{0125%014X}:revoked', i),
                   'quarantined: lot ' .. i, 'EX', 3600)
    end
    for i = 1, 10000 do
        local v = 'batch-' .. i
        if i % 2 == 0 then
            v = 'manifest=' .. string.rep('ab', 32) .. ' part=P ' ..
                'provisioned=T signer=' .. string.rep('cd', 32) ..
                ' spki_sha256=' .. string.format('%064x', i)
        end
        redis.call('SET', string.format('device_auth:{0126%014X}:registered',
                                        i), v)
    end
    redis.call('SET', 'device_auth:{0124abcdefabcdef01}:revoked', 'lower')
}, 0);

my %before = map { /^cmdstat_(\w+):calls=(\d+)/ ? ($1 => $2) : () }
             cli('INFO', 'commandstats');
my $t0 = time();
($rc, $out, $err) = da('list', 'revoked');
my $took = time() - $t0;
my %after = map { /^cmdstat_(\w+):calls=(\d+)/ ? ($1 => $2) : () }
            cli('INFO', 'commandstats');

my @l = lines($out);
my $revoked = () = cli('--scan', '--pattern', 'device_auth:{*}:revoked');
is(scalar @l, $revoked - 1,
   "list revoked: every revoked key but the lower-case one ($revoked keys)");
ok(scalar(@l) >= 10000, 'list revoked: 10,000 of them at least');
ok($took < 2 * $slow, sprintf('list revoked: 10,000 keys in under %d s '
                               . '(%.2f s)', 2 * $slow, $took));
my $scans = ($after{scan} // 0) - ($before{scan} // 0);
ok($scans > 0 && $scans < 200,
   "list revoked: SCAN a page at a time ($scans calls), never KEYS");
is(($after{keys} // 0) - ($before{keys} // 0), 0, 'list revoked: no KEYS');
is($rc, 1, 'list revoked: exit 1, a key no edge reads');
like($err, qr/^list: \d+ revoked keys: \d+ revoked, 1000 quarantined; not listed: 1 keys whose name no edge reads, 0 of the wrong type \(device-auth lint names them\)$/,
     'list revoked: the counts, the key not listed');
is(scalar(grep { /^0124\w{14}\trevoked\t-\t"stolen, lot \d+"$/ } @l), 9000,
   'list revoked: serial, status, no expiry, the reason');
is(scalar(grep { /^0125\w{14}\tquarantined\t(59m\d\ds|1h0m0s)\t"quarantined: lot \d+"$/ } @l),
   1000, 'list revoked: the quarantines, their time left');

$t0 = time();
($rc, $out, $err) = da('list', 'quarantined');
$took = time() - $t0;
is(scalar(lines($out)), 1000, 'list quarantined: the 1000 quarantines');
ok($took < 2 * $slow, sprintf('list quarantined: %.2f s', $took));

$t0 = time();
($rc, $out, $err) = da('list', 'registered');
$took = time() - $t0;
@l = grep { /^0126/ } lines($out);
is(scalar @l, 10000, 'list registered: 10,000');
ok($took < 2 * $slow, sprintf('list registered: 10,000 keys in %.2f s',
                              $took));
is(scalar(grep { /^0126\w{14}\tmanifest\t[0-9a-f]{64}\t"manifest=/ } @l),
   5000, 'list registered: the imports, with their key');
is(scalar(grep { /^0126\w{14}\thand\t-\t"batch-\d+"$/ } @l), 5000,
   'list registered: the batches by hand');
my ($k) = grep { /^012600000000000002\t/ } @l;
like($k // '', qr/\tmanifest\t0{63}2\t/,
     'list registered: the key of its own value');
like($err, qr/^list: \d+ registered: \d+ from a manifest \(the chip's key recorded\), \d+ by hand, 0 neither$/,
     'list registered: the counts');

($rc, $out, $err) = da('list', 'nothing');
is($rc, 2, 'list nothing: exit 2');

# 10,000 revocations from a file
my $big = join '', map { sprintf "0127%014X,lot %d, with a comma\r\n", $_, $_ }
                   1 .. 10000;
$t->write_file('big.csv', $big);
$n = () = audit();
$t0 = time();
($rc, $out, $err) = da('revoke', '--from', $t->testdir . '/big.csv',
                       '--quiet');
$took = time() - $t0;
is($out, $summary->(10000, 10000, 'revoked', 0, 0, 0) . "\n",
   'revoke --from 10,000: the summary');
ok($took < 10 * $slow, sprintf('revoke --from 10,000 lines: %.2f s', $took));
is(naudit_since($n), 10000, 'revoke --from 10,000: 10,000 entries');
is(cli('GET', key(sprintf('0127%014X', 7777), 'revoked')),
   'lot 7777, with a comma', 'revoke --from 10,000: a reason');

cli('FLUSHDB');



###############################################################################
# lint: each kind of key no edge reads, in a database of its own

my $db = "127.0.0.1:$port db=3";
sub c3 { cli('-n', 3, @_) }

c3('SET', key('0123A1B2C3D4E5F6A7', 'revoked'), 'fine');
c3('SET', key('0123A1B2C3D4E5F6A7', 'registered'),
   "manifest=" . ('ab' x 32) . " part=P provisioned=T signer="
   . ('cd' x 32) . " spki_sha256=" . ('ef' x 32));
c3('SET', key('0123A1B2C3D4E5F6A8', 'registered'), 'batch-1');
c3('ZADD', key('0123A1B2C3D4E5F6A7', 'seen'), 1, 'x');
c3('HSET', key('0123A1B2C3D4E5F6A7', 'evrl'), 'revoked', 1);
c3('XADD', 'device_auth:events', '*', 'type', 'revoked');
c3('XADD', 'device_auth:audit', '*', 'what', 'revoke');
c3('PFADD', 'device_auth:devices:2026-11-30', 'a');
c3('SET', "device_auth:signer:$signer1:revoked", 'fine');
c3('SET', 'other-app:session:1', 'not ours');

($rc, $out, $err) = da('lint', '--redis', $db);
is($rc, 0, 'lint, a clean database: exit 0');
is($out, 'summary: 9 keys under "device_auth:", 0 findings; registered '
         . "values: 1 in the import format, 1 by hand, 0 neither; 1 other "
         . "keys\n", 'lint, a clean database: the summary');

my %bad = (
    'device_auth:{0123a1b2c3d4e5f6a7}:revoked' => ['lower-case-serial',
        'the edge reads "device_auth:{0123A1B2C3D4E5F6A7}:revoked"'],
    'device_auth:{sn0123A1B2C3D4E5F6A7}:registered' => ['sn-prefix',
        'the edge reads "device_auth:{0123A1B2C3D4E5F6A7}:registered"'],
    'device_auth:{0123A1B2C3D4E5F6A}:revoked' => ['not-a-serial',
        'no edge computes that serial: 18 hex digits, upper-case'],
    'device_auth:0123A1B2C3D4E5F6A9:revoked' => ['no-braces',
        'the edge reads "device_auth:{0123A1B2C3D4E5F6A9}:revoked"'],
    'device_auth:{0123A1B2C3D4E5F6A9}:revokd' => ['unknown-suffix',
        'a device\'s keys end in :revoked, :registered, :seen, :edges or :evrl'],
    'device_auth:{0123A1B2C3D4E5F6A9}' => ['unknown-suffix',
        'a device\'s keys end in :revoked, :registered, :seen, :edges or :evrl'],
    "device_auth:signer:\U$signer1\E:revoked" => ['signer-id',
        "the edge reads \"device_auth:signer:$signer1:revoked\""],
    "device_auth:signer:" . join(':', unpack('(A2)*', uc $signer1))
        . ':compromised' => ['signer-id',
        "the edge reads \"device_auth:signer:$signer1:compromised\""],
    'device_auth:signer:abc:revoked' => ['signer-id',
        'not a signer id: 64 lower-case hex digits'],
    "device_auth:signer:$signer1:revokd" => ['unknown-suffix',
        'a signer\'s keys end in :revoked or :compromised'],
    'device_auth:{0123A1B2C3D4E5F6B1}:revoked' => ['wrong-type',
        'a hash where the edge reads a string: it fails on it (the fail '
        . 'mode decides)'],
    'device_auth:{0123A1B2C3D4E5F6B1}:seen' => ['wrong-type',
        'a string where the edge reads a zset: it fails on it (the fail '
        . 'mode decides)'],
    'device_auth:events' => ['wrong-type',
        'a string where the edge reads a stream: it fails on it (the fail '
        . 'mode decides)'],
    'device_auth:{0123A1B2C3D4E5F6B2}:registered' => ['registered-value',
        'neither the format of an import nor free text: control '
        . 'characters (a CR from a CRLF file?)'],
    'device_auth:{0123A1B2C3D4E5F6B3}:registered' => ['registered-value',
        'neither the format of an import nor free text: fields of an '
        . 'import, without a valid spki_sha256= (64 lower-case hex digits)'],
    'device_auth:{0123A1B2C3D4E5F6B4}:revoked' => ['control-characters',
        'the reason holds \x0D (a CR from a CRLF file?)'],
    'device_auth:devices:2026-11-29' => ['not-hyperloglog',
        'PFCOUNT cannot read it'],
    'device_auth:devices:yesterday' => ['unknown-key',
        'the edges count devices in devices:<YYYY-MM-DD>'],
    'device_auth:whatever' => ['unknown-key', 'no edge reads such a key'],
    'device_auth{0123A1B2C3D4E5F6A7}:revoked' => ['outside-prefix',
        'under the prefix "device_auth": an edge with the prefix '
        . '"device_auth:" never reads it'],
    "device-auth:signer:$signer1:revoked" => ['outside-prefix',
        'under the prefix "device-auth:": an edge with the prefix '
        . '"device_auth:" never reads it'],
);

c3('DEL', 'device_auth:events');
for my $k (sort keys %bad) {
    my $code = $bad{$k}[0];
    if ($k =~ /B1\}:revoked$/) {
        c3('HSET', $k, 'a', 'b');
    } elsif ($k =~ /B2\}:registered$/) {
        c3('SET', $k, "batch-1\r");
    } elsif ($k =~ /B3\}:registered$/) {
        c3('SET', $k, 'manifest=' . ('ab' x 32) . ' spki_sha256=' . ('EF' x 32));
    } elsif ($k =~ /B4\}:revoked$/) {
        c3('SET', $k, "stolen\r");
    } else {
        c3('SET', $k, 'x');
    }
}

($rc, $out, $err) = da('lint', '--redis', $db);
is($rc, 1, 'lint: exit 1 with findings');
my %found;
for (lines($out)) {
    next if /^summary:/;
    /^(\S+) "((?:[^"\\]|\\x[0-9A-F]{2})*)": (.*)$/ or do {
        fail("lint: a line of its form: $_");
        next;
    };
    $found{$2 =~ s/\\x([0-9A-F]{2})/chr hex $1/ger} = [$1, $3];
}
is_deeply(\%found, \%bad, 'lint: each kind of key, its code, what the edge '
                          . 'reads instead');
like($out, qr/^summary: 27 keys under "device_auth:", ${\ scalar keys %bad} findings; registered values: 1 in the import format, 1 by hand, 2 neither; 1 other keys$/m,
     'lint: the summary counts the keys, findings, registrations');

# profile generic: a lower-case serial is a CN like another
c3('FLUSHDB');
c3('SET', key('meter-0042', 'revoked'), 'x');
c3('SET', key('0123a1b2c3d4e5f6a7', 'revoked'), 'x');
($rc, $out) = da('lint', '--redis', $db);
is($rc, 1, 'lint, generic CNs with profile atecc608: findings');
($rc, $out) = da('lint', '--redis', $db, '--profile', 'generic');
is($rc, 0, 'lint --profile generic: none') or diag($out);

# another prefix
c3('FLUSHDB');
c3('SET', key('0123A1B2C3D4E5F6A7', 'revoked') =~ s/^device_auth:/fleet7:/r,
   'x');
c3('SET', key('0123A1B2C3D4E5F6A7', 'revoked'), 'x');
{
    local $ENV{DEVICE_AUTH_PREFIX} = 'fleet7:';
    ($rc, $out) = da('lint', '--redis', $db);
}
like($out, qr/^outside-prefix "device_auth:\{0123A1B2C3D4E5F6A7\}:revoked": under the prefix "device_auth:": an edge with the prefix "fleet7:" never reads it$/m,
     'lint, DEVICE_AUTH_PREFIX: the keys of the other prefix named');
like($out, qr/^summary: 1 keys under "fleet7:", 1 finding;/m,
     'lint, DEVICE_AUTH_PREFIX: its keys');
c3('FLUSHDB');


###############################################################################
# pins: the real Microchip certificates, ids as the edge computes them

my $data = "$repo/t/data/atecc608";
my %sources;
{
    my $doc = $t->read_file("$data/SOURCES.md");
    while ($doc =~ /^### (\S+\.pem)\n(.*?)(?=^### |\z)/msg) {
        my ($file, $body) = ($1, $2);
        $sources{$file} = $1 if $body =~ /SHA-256 \(DER\): `([0-9a-f]{64})`/;
    }
}

my @pins = map { s{.*/}{}r } glob("$data/root-*.pem"), glob("$data/signer-*.pem");
ok(@pins >= 8, 'pins: the roots and signers of t/data');

($rc, $out, $err) = da('pins', map { "$data/$_" } @pins);
is($rc, 0, 'pins: all ok (exit 0)') or diag($out, $err);
my %line;
for (lines($out)) {
    $line{$1} = $_ if m{^\S*/([^/\s]+\.pem):1 };
}
for my $f (@pins) {
    my $l = $line{$f} // '';
    my ($id) = $l =~ / id=([0-9a-f]{64}) /;
    is($id, cert_fingerprint("$data/$f"),
       "pins: $f: the id, openssl's SHA-256 of the DER");
    is($id, $sources{$f}, "pins: $f: the id SOURCES.md gives")
        if $sources{$f};

    my $end = `openssl x509 -in $data/$f -noout -enddate -dateopt iso_8601 2>/dev/null`;
    if ($end =~ /notAfter=(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)Z/) {
        like($l, qr/ not_after=$1T$2Z /, "pins: $f: not_after");
    }

    my $subject = `openssl x509 -in $data/$f -noout -subject -nameopt RFC2253`;
    $subject =~ s/^subject=//;
    chomp $subject;
    like($l, qr/ ok .* ca=yes subject="\Q$subject\E" issuer="CN=/,
         "pins: $f: ok, a CA, its subject, its issuer");
}
like($out, qr/^summary: ${\ scalar @pins} certificates in ${\ scalar @pins} files, 0 not ok; the earliest expiry 2028-05-23T21:00:00Z \("CN=ATECC 1H Signer 218B,O=Microchip Technology Inc"\)$/m,
     'pins: the summary, the earliest expiry');

# the signer id the edge puts in X-Device-Signer, $device_auth_signer
($rc, $out) = da('pins', "$pki/signers.pem");
my (undef, undef, $r) = req('dev3');
my $edge_id = $r->{headers}{'x-signer'};
like($out, qr/^\S+signers\.pem:2 ok id=$edge_id /m,
     'pins: the id of the second signer of a bundle is what the edge '
     . 'computes for its device');

# the log signers expired (2019-2023), a device certificate is no CA
($rc, $out) = da('pins', "$data/manifest-signer-log-signer-002.pem",
                 "$data/device-sn01230390b3d1450c01.pem");
is($rc, 1, 'pins, an expired certificate: exit 1');
like($out, qr/^\S+log-signer-002\.pem:1 expired id=\S+ not_after=2020-08-15T19:47:59Z days_left=-\d+ /m,
     'pins: Log Signer 002 expired in 2020');
like($out, qr/^\S+device-sn01230390b3d1450c01\.pem:1 not-a-ca /m,
     'pins: a device certificate is no CA');

# a root that expires in 5 days
my $soon = $t->testdir . '/soon.pem';
system('sh', '-c', 'exec "$@" 2>/dev/null', 'sh', 'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
       'ec_paramgen_curve:P-256', '-nodes', '-keyout',
       $t->testdir . '/soon.key', '-out', $soon, '-days', '5', '-subj',
       '/CN=Soon Root', '-addext', 'basicConstraints=critical,CA:TRUE')
    == 0 or die "openssl req";
($rc, $out) = da('pins', $soon);
is($rc, 1, 'pins, a root expiring in 5 days: exit 1');
like($out, qr/:1 expiring id=\S+ not_after=\S+ days_left=[45] ca=yes subject="CN=Soon Root"/,
     'pins: expiring, within 30 days');
($rc, $out) = da('pins', '--days', 3, $soon);
is($rc, 0, 'pins --days 3: ok');

($rc, $out, $err) = da('pins', "$data/SOURCES.md");
is($rc, 2, 'pins, not PEM: exit 2');
like($err, qr/^device-auth pins: no PEM certificate found in "\S+SOURCES\.md"$/,
     'pins, not PEM: the message nginx -t gives');

SKIP: {
    my $shared = '/work/shared/testdata/atecc608';
    skip "no $shared", 1 unless -d $shared;
    my ($rc2, $out2) = da('pins', map { "$shared/$_" } @pins);
    is(join(' ', map { / id=(\S+) / } grep { !/^summary/ } lines($out2)),
       join(' ', map { cert_fingerprint("$shared/$_") } @pins),
       "pins: $shared: the ids openssl computes");
}


###############################################################################
# count, and show's line, from the HyperLogLog the edges write

my ($sec) = cli('TIME');
my @day = map { POSIX::strftime('%Y-%m-%d', gmtime($sec - $_ * 86400)) }
          0 .. 2;
cli('DEL', map { "device_auth:devices:$_" } @day);

($rc, $out) = da('count');
is($out, "$day[0] none counted (no device_auth:devices:$day[0])\n",
   'count, nothing counted today');
($rc, $out) = da('show', $SN1);
unlike($out, qr/^fleet:/m, 'show: no fleet line without the key');

cli('PFADD', "device_auth:devices:$day[0]", map { "d$_" } 1 .. 100);
cli('PFADD', "device_auth:devices:$day[1]", map { "d$_" } 51 .. 120);
my $c0 = cli('PFCOUNT', "device_auth:devices:$day[0]");
my $c1 = cli('PFCOUNT', "device_auth:devices:$day[1]");
my $cu = cli('PFCOUNT', map { "device_auth:devices:$_" } @day);

($rc, $out) = da('count');
is($out, "$day[0] $c0\n", "count: today ($c0)");
($rc, $out) = da('count', '--days', 3);
is($out, "$day[0] $c0\n$day[1] $c1\n$day[2] none counted (no "
         . "device_auth:devices:$day[2])\n3 days: $cu distinct devices\n",
   'count --days 3: each day, and the distinct devices of all');
ok(abs($cu - 120) <= 3, "count: the estimate is close ($cu of 120)");

($rc, $out) = da('show', $SN1);
like($out, qr/^fleet: +$c0 distinct devices seen today \($day[0] UTC\)$/m,
     'show: the devices counted today');

cli('SET', "device_auth:devices:$day[2]", 'not a hyperloglog');
($rc, $out) = da('count', '--days', 3);
is($rc, 1, 'count, a key of another type: exit 1');
like($out, qr/^$day[2] cannot tell: error WRONGTYPE /m,
     'count, a key of another type: said');
cli('DEL', map { "device_auth:devices:$_" } @day);


###############################################################################
# addresses: database, socket, prefix, password; Redis down

cli('-n', 5, 'DEL', "fleet7:{$SN2}:revoked");
($rc, $out) = da('revoke', $SN2, '--reason', 'in db 5', '--redis',
                 'unix:' . $t->redis_socket . ' db=5', '--prefix', 'fleet7:');
is($rc, 0, 'revoke over a unix socket, db=5, --prefix');
is(cli('-n', 5, 'GET', "fleet7:{$SN2}:revoked"), 'in db 5',
   'revoke: written there');
is(cli('-n', 5, 'XLEN', 'fleet7:audit'), 1, 'revoke: its audit stream too');
{
    local $ENV{DEVICE_AUTH_REDIS} = "127.0.0.1:$port db=5";
    local $ENV{DEVICE_AUTH_PREFIX} = 'fleet7:';
    ($rc, $out) = da('list', 'revoked');
    is($out, "$SN2\trevoked\t-\t\"in db 5\"\n",
       'list: DEVICE_AUTH_REDIS and DEVICE_AUTH_PREFIX');
}
cli('-n', 5, 'FLUSHDB');

my $closed = $t->port('closed');
($rc, $out, $err) = da('revoke', $SN2, '--reason', 'x', '--redis',
                       "127.0.0.1:$closed");
is($rc, 2, 'revoke, Redis down: exit 2');
like($err, qr/^device-auth revoke: cannot connect to redis at 127\.0\.0\.1:$closed db 0: Connection refused$/m,
     'revoke, Redis down: said');
for my $c (['list', 'revoked'], ['lint'], ['count']) {
    ($rc, $out, $err) = da(@$c, '--redis', "127.0.0.1:$closed");
    is($rc, 2, "$c->[0], Redis down: exit 2");
}

$t->redis_stop();
$t->redis_start('--requirepass', 's3cret');

($rc, $out, $err) = da('revoke', $SN2, '--reason', 'x');
is($rc, 2, 'revoke, no password: exit 2');
like($err, qr/NOAUTH|Authentication required/, 'revoke, no password: why');
{
    local $ENV{REDISCLI_AUTH} = 's3cret';
    ($rc, $out, $err) = da('revoke', $SN2, '--reason', 'with a password');
    is($rc, 0, 'revoke, REDISCLI_AUTH: exit 0') or diag($err);
    ($rc, $out, $err) = da('lint');
    is($rc, 0, 'lint, REDISCLI_AUTH: exit 0') or diag($out, $err);
}

$t->check_error_log();

done_testing();
