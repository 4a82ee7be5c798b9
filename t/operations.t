#!/usr/bin/perl

# docs/operations.md, the redis-cli runbook: every ```sh block is run
# verbatim (one shell command per line, /bin/sh, in a directory holding the
# files the runbook names) against the suite's redis-server and a running
# nginx, and what it does is checked through nginx.  "redis-cli" in those
# commands is a wrapper first in PATH that adds the test server's address;
# build/device-auth gets it from DEVICE_AUTH_REDIS, as the runbook says.
#
# Each block is recognised by what its commands do (a handler below); a
# block no handler recognises, or a handler that recognises no block or
# several, fails the test: a new runbook command needs a new check here.
# The ```nginx blocks are loaded into the test configuration as they are.
#
# The runbook's example signer is Microchip's "Crypto Authentication Signer
# 2C00"; no test device can be issued by it, so its id is replaced by the
# test signer's in the commands run (and checked to be 2C00's, which
# t/data has).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use DeviceAuth::Test qw(upstream_values cert_fingerprint);
use DeviceAuth::Manifest;

my $t = DeviceAuth::Test->new();
my $repo = $t->repo();

my $doc_file = "$repo/docs/operations.md";
my $doc = do {
    open my $fh, '<', $doc_file or die "$doc_file: $!";
    local $/;
    <$fh>;
};

# the fenced blocks: [lang, text, line]
my @blocks;
{
    my $line = 0;
    my $cur;

    for my $l (split /\n/, $doc) {
        $line++;

        if (!$cur && $l =~ /^```\s*(\S*)\s*$/) {
            $cur = [$1, '', $line];
        } elsif ($cur && $l =~ /^```\s*$/) {
            push @blocks, $cur;
            undef $cur;
        } elsif ($cur) {
            $cur->[1] .= "$l\n";
        }
    }

    die "unterminated code block at line $cur->[2]" if $cur;
}

my @sh = grep { $_->[0] =~ /^(sh|bash|shell|console)$/ } @blocks;
my @nginx = grep { $_->[0] eq 'nginx' } @blocks;
my @other = grep { $_->[0] !~ /^(sh|bash|shell|console|nginx)$/ } @blocks;

ok(!@other, 'operations.md: every code block is sh or nginx')
    or diag(join "\n", map { "line $_->[2]: ```$_->[0]" } @other);


###############################################################################
# the devices: the runbook's serials, issued by the test signer1

my %dev;
$dev{$_} = $t->make_device(name => $_, serial => $_)
    for qw(0123A1B2C3D4E5F6A7 0123A1B2C3D4E5F6A8 0123A1B2C3D4E5F6A9
           0123A1B2C3D4E5F6AA 0123A1B2C3D4E5F6B0 0123A1B2C3D4E5F6B1);

my $SN = '0123A1B2C3D4E5F6A7';
my $signer = cert_fingerprint($t->pki_file('signer1.pem'));
my $signer2 = cert_fingerprint($t->pki_file('signer2.pem'));
my $mchp = cert_fingerprint("$repo/t/data/atecc608/signer-2c00.pem");

my ($doc_signer) = $doc =~ /device_auth:signer:([0-9a-f]{64}):/;
is($doc_signer, $mchp, 'the example signer id is Microchip Signer 2C00\'s');

# the working directory of the commands

my $wd = $t->testdir() . '/ops';
mkdir $wd;
mkdir "$wd/bin";
mkdir "$wd/build";

sub copy_file {
    my ($from, $to) = @_;
    $t->write_file($to, $t->read_file($from));
}

copy_file("$dev{$SN}.pem", "$wd/device.pem");
copy_file($t->pki_file('signer1.pem'), "$wd/signer.pem");
copy_file($t->pki_file('roots.pem'), "$wd/roots.pem");
copy_file($t->pki_file('signers.pem'), "$wd/signers.pem");
symlink($t->cli_binary(), "$wd/build/device-auth")
    or die "symlink: $!";

# the reel the runbook imports: its three serials, signed by a log signer
# made here, whose certificate is log-signers.pem

my ($reel_name) = $doc =~ /import-manifest .* (\S+\.json)$/m;
my @reel_sn = map { "0123A1B2C3D4E5F6$_" } qw(A7 A8 A9);
my $manifest = DeviceAuth::Manifest->new($t);
my $log_signer = $manifest->log_signer('log-signer');
copy_file($log_signer->{cert}, "$wd/log-signers.pem");
$manifest->write("$wd/$reel_name", map {
    $manifest->entry(device => $dev{$_}, signer => $log_signer) } @reel_sn)
    if $reel_name;

# Microchip's signer, for the signer id of the example
mkdir "$wd/mchp";
copy_file("$repo/t/data/atecc608/signer-2c00.pem", "$wd/mchp/signer.pem");

my $real_cli = `sh -c 'command -v redis-cli'`;
chomp $real_cli;
die "no redis-cli" unless $real_cli;

my $redis_port = $t->redis_start();

$t->write_file("$wd/bin/redis-cli", <<"EOF");
#!/bin/sh
exec $real_cli -h 127.0.0.1 -p $redis_port "\$@"
EOF
chmod 0755, "$wd/bin/redis-cli";


###############################################################################
# nginx: the runbook's log_format, a location per behaviour

my $doc_nginx = join '', map { $_->[1] } @nginx;
my ($log_format) = $doc_nginx =~ /\blog_format\s+(\w+)/;
ok($log_format, 'the runbook\'s log_format') or $log_format = 'combined';

my $conf = <<'EOF';
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:%%REDIS_PORT%%;

#DOC#

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        access_log %%TESTDIR%%/devices.log #FORMAT#;

        add_header X-Status $device_auth_status always;
        add_header X-Reason $device_auth_reason always;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }

        location /registry {
            device_auth on;
            device_auth_registry on;
            proxy_pass http://%%ECHO%%;
        }

        location /clones {
            device_auth on;
            device_auth_duplicate_action quarantine;
            proxy_pass http://%%ECHO%%;
        }

        location /open {
            device_auth on;
            device_auth_fail_mode open;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF
$conf =~ s/#DOC#/$doc_nginx/;
$conf =~ s/#FORMAT#/$log_format/;
$t->write_conf($conf);
$t->run();


###############################################################################
# helpers

my %observed;     # $device_auth_status => { HTTP status => 1 }

# a request of a device: (HTTP status, $device_auth_status,
# $device_auth_reason, response)

sub req {
    my ($serial, $loc, %o) = @_;
    my $r = $t->https_get(
        $serial ? (device => $dev{$serial} || $serial) : (),
        path => $loc || '/', %o);
    my $st = $r->{status} || 0;
    my $xs = $r->{headers}{'x-status'} || '';
    $observed{$xs}{$st} = 1 if $xs;
    return ($st, $xs, $r->{headers}{'x-reason'}, $r);
}

sub status_is {
    my ($serial, $loc, $want, $name) = @_;
    my ($st, $xs) = req($serial, $loc);
    is("$st $xs", $want, $name);
}

sub cli { $t->redis_cli(@_) }

sub key { "device_auth:{$_[0]}:$_[1]" }
sub signer_key { "device_auth:signer:$_[0]:$_[1]" }

# entries of the events stream, oldest first: { id, type, serial, ... }
sub events {
    my @l = cli('XRANGE', 'device_auth:events', '-', '+');
    my @ev;
    while (@l) {
        my $id = shift @l;
        last unless $id =~ /^\d+-\d+$/;
        my %e = (id => $id);
        # 6 fields; a clone's event has its edges too
        while (@l >= 2 && $l[0] !~ /^\d+-\d+$/) {
            my ($k, $v) = splice(@l, 0, 2);
            $e{$k} = $v;
        }
        push @ev, \%e;
    }
    return @ev;
}

sub last_event {
    my ($serial, $type) = @_;
    my @e = grep { $_->{serial} eq $serial && $_->{type} eq $type } events();
    return $e[-1];
}

# runs one shell command line in the working directory: (rc, stdout,
# stderr); with bg => 1, returns the pid at once (stdout in $wd/bg.out)

my $cmd_n = 0;

sub sh {
    my ($line, %o) = @_;

    # the runbook's example signer is the test signer here
    $line =~ s/$doc_signer/$signer/g if $doc_signer;

    my $n = ++$cmd_n;
    my ($out, $err) = ("$t->{testdir}/cmd$n.out", "$t->{testdir}/cmd$n.err");

    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        chdir($o{dir} || $wd) or POSIX::_exit(126);
        $ENV{PATH} = "$wd/bin:$ENV{PATH}";
        delete $ENV{REDISCLI_AUTH};
        $ENV{DEVICE_AUTH_REDIS} = "127.0.0.1:$redis_port";
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        { no warnings 'exec'; exec '/bin/sh', '-c', $line; }
        POSIX::_exit(127);
    }

    return ($pid, $out, $err) if $o{bg};

    return finish($pid, $out, $err, $o{timeout} || 10);
}

sub finish {
    my ($pid, $out, $err, $timeout) = @_;
    my $end = time() + $timeout;
    my $rc;

    while (1) {
        my $r = waitpid($pid, POSIX::WNOHANG());
        if ($r == $pid) {
            $rc = $? >> 8;
            last;
        }
        if (time() > $end) {
            kill 'KILL', -$pid;
            waitpid($pid, 0);
            $rc = 'timeout';
            last;
        }
        sleep(0.02);
    }

    return ($rc, $t->read_file($out), $t->read_file($err));
}

# runs a line and checks it ran cleanly: its output
sub run_ok {
    my ($line, %o) = @_;
    my ($rc, $out, $err) = sh($line, %o);
    my $ok = $rc eq '0' && $err eq ''
             && $out !~ /^(\(error\) )?(ERR|WRONGTYPE|NOAUTH|WRONGPASS|NOPERM)\b/m;
    ok($ok, "runs cleanly: $line")
        or diag("exit $rc\nstdout: $out\nstderr: $err");
    return $out;
}

sub lines { my @l = split /\n/, $_[0]; return @l }

# the block's command lines (no blank lines, no comments)
sub commands {
    my ($text) = @_;
    return grep { /\S/ && !/^\s*#/ } split /\n/, $text;
}


###############################################################################
# what each runbook block does, and how to tell

my @handlers = (

    # the serial of a certificate file
    {
        name => 'serial of a certificate file',
        match => qr/^openssl x509 -in device\.pem -noout -subject$/,
        run => sub {
            my ($cmd) = @_;
            my $out = run_ok($cmd);
            my (undef, undef, undef, $r) = req($SN, '/');
            my ($seen) = upstream_values($r, 'X-Device-Serial');
            is($seen, $SN, 'the device\'s serial as nginx sees it');
            like($out, qr/CN\s*=\s*sn\Q$seen\E\b/i,
                 'the subject holds the serial the edge uses');
        },
    },

    # revoke
    {
        name => 'revoke a device',
        match => qr/^redis-cli SET '[^']*\{\w+\}:revoked' '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($reason) = $cmd =~ /'([^']*)'$/;
            cli('DEL', key($SN, 'revoked'));
            status_is($SN, '/', '200 ok', 'before the revocation: 200 ok');

            my $mark = $t->log_mark();
            is(run_ok($cmd), "OK\n", 'revoke: OK');

            my ($st, $xs, $xr) = req($SN, '/');
            is("$st $xs", '403 revoked', 'revoke: the next request is 403 revoked');
            is($xr, $reason, 'revoke: $device_auth_reason is the value');

            # the log line the runbook quotes
            my ($doc_line) = $doc =~ /^    (device_auth: device rejected: code=403 status=revoked .*)$/m;
            (my $want = $doc_line || '') =~ s/signer=\S+/signer=$signer/;
            ok($doc_line && $t->wait_error_log(qr/\Q$want\E, client: /,
                                               mark => $mark),
               'revoke: the error log line as the runbook shows it')
                or diag($doc_line);

            my $e = last_event($SN, 'revoked');
            ok($e && $e->{reason} eq $reason && $e->{signer} eq $signer
               && $e->{location} eq '127.0.0.1',
               'revoke: a revoked event') or diag(explain $e);

            # the runbook's log_format
            my ($line) = grep { /\b403\b/ && /device=revoked/ }
                         split /\n/, $t->read_file('devices.log');
            like($line || '', qr/device=revoked serial=\Q$SN\E signer=$signer reason="\Q$reason\E"/,
                 'revoke: the runbook\'s log_format');
        },
    },

    # state of a device
    {
        name => 'check the state of a device',
        match => qr/^redis-cli GET '\S+:revoked'\nredis-cli TTL '\S+:revoked'\nredis-cli GET '\S+:registered'$/,
        run => sub {
            my @cmd = @_;
            cli('SET', key($SN, 'revoked'), 'state check');
            cli('SET', key($SN, 'registered'), 'batch-state');
            is(run_ok($cmd[0]), "state check\n", 'state: GET revoked: the reason');
            is(run_ok($cmd[1]), "-1\n", 'state: TTL: -1 without expiry');
            is(run_ok($cmd[2]), "batch-state\n", 'state: GET registered: the batch');

            # what the runbook says of TTL for a device not revoked
            cli('DEL', key($SN, 'revoked'));
            is(run_ok($cmd[1]), "-2\n", 'state: TTL: -2 when not revoked');
            cli('DEL', key($SN, 'registered'));
        },
    },

    # revoke with device-auth
    {
        name => 'revoke a device with device-auth',
        match => qr/^build\/device-auth revoke \w+ --reason '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($reason) = $cmd =~ /'([^']*)'$/;

            # registered from a manifest, as the runbook's line shows
            my $spki = DeviceAuth::Manifest::spki_sha256("$wd/device.pem");
            cli('DEL', key($SN, 'revoked'));
            cli('SET', key($SN, 'registered'), "manifest=" . ('ab' x 32)
                . " part=ATECC608A-TNGTLS provisioned=2026-11-02T10:00:00Z "
                . "signer=$signer spki_sha256=$spki");

            my $out = run_ok($cmd);
            my @doc_lines = $doc =~ /^ {4}(\Q$SN\E revoked; .*|summary: 1 entry, 1 revoked, .*)$/mg;
            is_deeply([lines($out =~ s/[0-9a-f]{64}/HEX/gr)],
                      [map { s/[0-9a-f]{64}/HEX/gr } @doc_lines],
                      'revoke: the lines the runbook shows');
            like($out, qr/key spki_sha256 $spki$/m,
                 'revoke: the key the registration records');

            my ($st, $xs, $xr) = req($SN, '/');
            is("$st $xs $xr", "403 revoked $reason", 'revoke: 403 revoked');

            my ($a) = $t->redis_stream('device_auth:audit', '+', '-',
                                       'COUNT', 1);
            my $user = getpwuid($<);
            chomp(my $host = `hostname`);
            is_deeply([@{$a}{qw(what serial key reason user host source)}],
                      ['revoke', $SN, key($SN, 'revoked'), $reason, $user,
                       $host, 'argument 1'],
                      'revoke: the audit entry: what, which, why, who, '
                      . 'where');
            ok(!exists $a->{by} && !exists $a->{previous},
               'revoke: no --by, nothing there before');
            my ($now) = cli('TIME');
            ok(abs(($a->{id} =~ /^(\d+)/)[0] / 1000 - $now) < 60,
               'revoke: the entry id is the time');

            cli('DEL', key($SN, 'revoked'), key($SN, 'registered'));
        },
    },

    # unrevoke with device-auth: a revocation, and a quarantine the edge wrote
    {
        name => 'unrevoke a device',
        match => qr/^build\/device-auth unrevoke \w+ --reason '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($why) = $cmd =~ /'([^']*)'$/;
            cli('SET', key($SN, 'revoked'), 'to be lifted');
            status_is($SN, '/', '403 revoked', 'unrevoke: revoked before');
            is(run_ok($cmd), "$SN unrevoked, was \"to be lifted\"\n"
               . "summary: 1 entry, 1 unrevoked, 0 unchanged, 0 refused, "
               . "0 duplicates\n", 'unrevoke: the line and the summary');
            status_is($SN, '/', '200 ok', 'unrevoke: the next request is 200 ok');

            my ($a) = $t->redis_stream('device_auth:audit', '+', '-',
                                       'COUNT', 1);
            is_deeply([@{$a}{qw(what serial key reason previous source)}],
                      ['unrevoke', $SN, key($SN, 'revoked'), $why,
                       'to be lifted', 'argument 1'],
                      'unrevoke: the audit entry');

            like(run_ok($cmd), qr/^$SN not revoked\nsummary: 1 entry, 0 unrevoked, 1 unchanged, /,
                 'unrevoke: again, unchanged');

            # a quarantine the edge wrote: its places go with it
            is(edge_quarantine($SN), '200 ok,200 ok,200 ok,403 quarantined',
               'unrevoke: a clone quarantined by the edge at 4 places');
            like(run_ok($cmd), qr/^$SN unrevoked, was quarantined: "quarantined: cloned device seen at 4 places within 600s: [^"]*" \(\d+m\d+s left\); 4 places forgotten$/m,
                 'unrevoke: the quarantine and its places');
            is(join(',', map { join ' ', (req($SN, '/clones',
                                              local_addr => $_))[0, 1] }
                         qw(127.0.0.1 127.0.0.2 127.0.0.5)),
               '200 ok,200 ok,200 ok',
               'unrevoke: let in at its next requests, not quarantined '
               . 'again');
            cli('DEL', key($SN, 'seen'));
        },
    },

    {
        name => 'unrevoke with redis-cli: both keys',
        match => qr/^redis-cli DEL '[^']*\{\w+\}:revoked' '[^']*\{\w+\}:seen'$/,
        run => sub {
            my ($cmd) = @_;

            # what the runbook said before: :revoked alone
            is(edge_quarantine($SN), '200 ok,200 ok,200 ok,403 quarantined',
               'redis-cli DEL: a clone quarantined by the edge');
            is(cli('DEL', key($SN, 'revoked')), 1, 'DEL of :revoked alone');
            status_is($SN, '/clones', '403 quarantined',
                      'DEL of :revoked alone: quarantined again at once '
                      . '(its places are still there)');

            is(run_ok($cmd), "2\n", 'redis-cli DEL: both keys deleted');
            is(join(',', map { join ' ', (req($SN, '/clones',
                                              local_addr => $_))[0, 1] }
                         qw(127.0.0.1 127.0.0.2 127.0.0.5)),
               '200 ok,200 ok,200 ok',
               'redis-cli DEL of both: let in, not quarantined again');

            cli('SET', key($SN, 'revoked'), 'revoked');
            is(run_ok($cmd), "2\n", 'redis-cli DEL: a revocation too');
            status_is($SN, '/', '200 ok', 'redis-cli DEL: 200 ok');
            cli('DEL', key($SN, 'seen'));
        },
    },

    # list revoked
    {
        name => 'list revoked devices',
        match => qr/^redis-cli --scan --pattern '[^']*:revoked'$/,
        run => sub {
            my ($cmd) = @_;
            my @keys = revoke_two();
            is_deeply([sort(lines(run_ok($cmd)))], \@keys,
                      'list: exactly the revoked devices, no signer keys');
            cli('DEL', @keys, signer_key($signer2, 'revoked'));
        },
    },

    # list revoked with reasons, with device-auth
    {
        name => 'list revoked devices with the reasons',
        match => qr/^build\/device-auth list revoked\nbuild\/device-auth list quarantined$/,
        run => sub {
            my @cmd = @_;
            my @keys = revoke_two();

            # a key no edge reads is counted, not listed
            cli('SET', 'device_auth:{0123a1b2c3d4e5f6b0}:revoked', 'x');

            my ($rc, $out, $err) = sh($cmd[0]);
            is($rc, 1, 'list revoked: exit 1, a key no edge reads');
            my $left = sub { $_[0] =~ s/\t\d+[dhms][\dhms]*\t/\tLEFT\t/r };
            is_deeply([map { $left->($_) } sort(lines($out))],
                      [map { $left->(s/^ {4}//r) }
                           $doc =~ /^(    0123\S+\t\S+\t.*)$/mg],
                      'list revoked: the lines the runbook shows')
                or diag($out);
            like($err, qr/^list: 2 revoked keys: 1 revoked, 1 quarantined; not listed: 1 keys whose name no edge reads, 0 of the wrong type \(device-auth lint names them\)$/,
                 'list revoked: the counts on stderr');
            cli('DEL', 'device_auth:{0123a1b2c3d4e5f6b0}:revoked');

            ($rc, $out, $err) = sh($cmd[1]);
            is($rc, 0, 'list quarantined: exit 0');
            like($err, qr/^list: 1 quarantined, of 2 revoked keys$/,
                 'list quarantined: the counts on stderr');
            my @q = lines($out);
            is(scalar @q, 1, 'list quarantined: one');
            like($q[0] // '', qr/^0123A1B2C3D4E5F6A9\tquarantined\t(59m[0-5]\ds|1h0m0s)\t"quarantined: listed"$/,
                 'list quarantined: the quarantine, its time left');

            cli('DEL', @keys, signer_key($signer2, 'revoked'));
        },
    },

    # many devices from a file
    {
        name => 'revoke many devices from a file',
        match => qr/^build\/device-auth revoke --from (\S+) --reason '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($file) = $cmd =~ /--from (\S+)/;
            my ($default) = $cmd =~ /'([^']*)'$/;
            my ($example) = $doc =~ /`\Q$file\E`:\n\n((?: {4}.*\n)+)/;
            ok($example, "revoke --from: the runbook shows $file");

            # as a spreadsheet writes it: a byte order mark, CRLF
            $t->write_file("$wd/$file", "\xEF\xBB\xBF"
                           . join('', map { s/^ {4}//r . "\r\n" }
                                          split /\n/, $example // ''));

            my @sn = map { "0123A1B2C3D4E5F6$_" } qw(A8 A9);
            cli('DEL', map { (key($_, 'revoked'), key($_, 'registered')) }
                           @sn);
            my $before = () = $t->redis_stream('device_auth:audit');

            my ($rc, $out, $err) = sh($cmd);
            is($rc, 1, 'revoke --from: exit 1, an entry was refused');
            is($err, '', 'revoke --from: nothing on stderr');
            is_deeply([lines($out)],
                      [$doc =~ /^ {4}(\Q$file\E:\d+ .*|summary: \d+ entries, .* revoked, .*)$/mg],
                      'revoke --from: the lines the runbook shows');

            my ($st, $xs, $xr) = req($sn[0], '/');
            is("$st $xs", '403 revoked', "revoke --from: $sn[0] revoked");
            is($xr, 'stolen from the van, ticket 4801',
               'revoke --from: its reason from the file, comma and all');
            ($st, $xs, $xr) = req($sn[1], '/');
            is("$st $xs $xr", "403 revoked $default",
               "revoke --from: $sn[1] (sn, lower case), --reason");

            my @a = $t->redis_stream('device_auth:audit');
            is(scalar(@a) - $before, 2, 'revoke --from: two audit entries');
            is_deeply([map { "$_->{serial} $_->{source}" } @a[-2, -1]],
                      ["$sn[0] $file:2", "$sn[1] $file:3"],
                      'revoke --from: the audit names the file and line');

            like(run_ok("build/device-auth revoke --from $file --reason "
                        . "'$default' --quiet 2>&1 || true"),
                 qr/^\Q$file\E:4 .* refused: .*\nsummary: 3 entries, 0 revoked, 2 unchanged, 1 refused, 0 duplicates$/,
                 'revoke --from again: unchanged, --quiet shows the refusal');

            cli('DEL', map { key($_, 'revoked') } @sn);
        },
    },

    # quarantine for a day
    {
        name => 'quarantine a device for a day',
        match => qr/^build\/device-auth quarantine \w+ --for \w+ --reason '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($for, $why) = $cmd =~ /--for (\w+) --reason '([^']*)'$/;
            is($for, '1d', 'quarantine: a day');
            my $reason = "quarantined: $why";

            # no event of this device in the last minute (the rate limit)
            cli('DEL', key($SN, 'revoked'), key($SN, 'evrl'));

            is(run_ok($cmd), "$SN quarantined for 1d0h0m0s\nsummary: 1 "
               . "entry, 1 quarantined, 0 unchanged, 0 refused, 0 "
               . "duplicates\n", 'quarantine: the line');
            my ($st, $xs, $xr) = req($SN, '/');
            is("$st $xs", '403 quarantined', 'quarantine: 403 quarantined');
            is($xr, $reason, 'quarantine: the reason');
            my $left = cli('TTL', key($SN, 'revoked'));
            ok($left > 86400 - 60 && $left <= 86400,
               "quarantine: TTL about a day ($left)");

            my $e = last_event($SN, 'quarantined');
            ok($e && $e->{reason} eq $reason,
               'quarantine: an attempt writes a quarantined event');

            # never over a revocation
            cli('SET', key($SN, 'revoked'), 'stolen for good');
            my ($rc, $out) = sh($cmd);
            is($rc, 1, 'quarantine of a revoked device: exit 1');
            like($out, qr/^$SN refused: revoked, not quarantined: "stolen for good": /m,
                 'quarantine of a revoked device: refused, said why');
            is(cli('TTL', key($SN, 'revoked')), -1,
               'quarantine of a revoked device: still without expiry');

            cli('DEL', key($SN, 'revoked'));
            status_is($SN, '/', '200 ok', 'quarantine ended early');
        },
    },

    # signer id of a certificate file
    {
        name => 'signer id of a certificate file',
        match => qr/^openssl x509 -in signer\.pem -noout -fingerprint -sha256 \|/,
        run => sub {
            my ($cmd) = @_;
            my $id = run_ok($cmd);
            chomp $id;
            my (undef, undef, undef, $r) = req($SN, '/');
            is_deeply([upstream_values($r, 'X-Device-Signer')], [$id],
                      'signer id: what the upstream receives as X-Device-Signer');
            is(run_ok($cmd, dir => "$wd/mchp"), "$doc_signer\n",
               'signer id of Microchip Signer 2C00: the runbook\'s example');
        },
    },

    # revoke a signer
    {
        name => 'revoke a signer',
        match => qr/^redis-cli SET '[^']*signer:[0-9a-f]{64}:revoked' '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($reason) = $cmd =~ /'([^']*)'$/;
            status_is($SN, '/', '200 ok', 'signer revoke: 200 ok before');
            is(run_ok($cmd), "OK\n", 'signer revoke: OK');
            my ($st, $xs, $xr) = req($SN, '/');
            is("$st $xs", '403 signer_revoked',
               'signer revoke: its device 403 signer_revoked');
            is($xr, $reason, 'signer revoke: the reason');
            status_is('dev3', '/', '200 ok',
                      'signer revoke: a device of another signer passes');
            my $e = last_event($SN, 'signer_revoked');
            ok($e && $e->{reason} eq $reason, 'signer revoke: an event');
        },
    },

    {
        name => 'undo a signer revocation',
        match => qr/^redis-cli DEL '[^']*signer:[0-9a-f]{64}:revoked'$/,
        run => sub {
            my ($cmd) = @_;
            cli('SET', signer_key($signer, 'revoked'), 'x');
            status_is($SN, '/', '403 signer_revoked', 'signer unrevoke: before');
            is(run_ok($cmd), "1\n", 'signer unrevoke: deleted');
            status_is($SN, '/', '200 ok', 'signer unrevoke: 200 ok');
        },
    },

    # a compromised signer
    {
        name => 'mark a signer compromised',
        match => qr/^redis-cli SET '[^']*signer:[0-9a-f]{64}:compromised' '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($value) = $cmd =~ /'([^']*)'$/;
            my $A8 = '0123A1B2C3D4E5F6A8';

            cli('SET', key($SN, 'registered'), 'batch-old');
            cli('DEL', key($A8, 'registered'));
            status_is($A8, '/', '200 ok', 'compromised: unregistered ok before');

            is(run_ok($cmd), "OK\n", 'compromised: OK');

            status_is($SN, '/', '200 ok',
                      'compromised: a registered device keeps working');
            my ($st, $xs, $xr) = req($A8, '/');
            is("$st $xs", '403 signer_compromised',
               'compromised: an unregistered one is 403 signer_compromised '
               . 'without device_auth_registry');

            # the reason the runbook quotes
            (my $prose = $doc) =~ s/\s+/ /g;
            my ($doc_reason) = $prose =~ /reason `(signer compromised \([^`]*)`/;
            is($xr, $doc_reason, 'compromised: the reason the runbook quotes');
            like($xr, qr/\Q($value)\E/, 'compromised: it holds the value');

            my $e = last_event($A8, 'signer_compromised');
            ok($e && $e->{reason} eq $xr,
               'compromised: a signer_compromised event');
            cli('DEL', key($SN, 'registered'));
        },
    },

    {
        name => 'undo a compromised mark',
        match => qr/^redis-cli DEL '[^']*signer:[0-9a-f]{64}:compromised'$/,
        run => sub {
            my ($cmd) = @_;
            my $A8 = '0123A1B2C3D4E5F6A8';
            cli('SET', signer_key($signer, 'compromised'), 'x');
            status_is($A8, '/', '403 signer_compromised',
                      'compromised undo: before');
            is(run_ok($cmd), "1\n", 'compromised undo: deleted');
            status_is($A8, '/', '200 ok', 'compromised undo: 200 ok');
        },
    },

    # a reel's manifest
    {
        name => 'import a manifest',
        match => qr/^build\/device-auth import-manifest --roots roots\.pem --signers signers\.pem --log-signers log-signers\.pem \S+\.json$/,
        run => sub {
            my ($cmd) = @_;
            cli('DEL', map { key($_, 'registered') } @reel_sn);
            status_is($reel_sn[1], '/registry', '403 unregistered',
                      'manifest: A8 unregistered before');

            my $out = run_ok($cmd);

            # the output the runbook shows
            my @doc_lines = $doc =~ /^    (\Q$reel_name\E:\d+ .*|summary: \d+ entries in .*)$/mg;
            is_deeply([lines($out)], \@doc_lines,
                      'manifest: the output as the runbook shows it');

            status_is($_, '/registry', '200 ok', "manifest: $_ registered")
                for @reel_sn;

            # the value, as the runbook describes it
            my %f = map { split /=/, $_, 2 }
                    split / /, cli('GET', key($SN, 'registered'));
            is_deeply([sort keys %f],
                      [qw(manifest part provisioned signer spki_sha256)],
                      'manifest: the fields the runbook names');
            is($f{manifest}, Digest::SHA::sha256_hex(
                                 $t->read_file("$wd/$reel_name")),
               'manifest: the SHA-256 of the file');
            is($f{signer}, $signer, 'manifest: the signer id');
            is($f{spki_sha256},
               DeviceAuth::Manifest::spki_sha256("$wd/device.pem"),
               'manifest: the key of the device');

            like(run_ok($cmd), qr/^summary: 3 entries in 1 file, 0 registered, 3 already registered, /m,
                 'manifest: importing it again is harmless');

            # the runbook's example value: Microchip's sample manifest
            my ($example) = $doc =~ /^    (manifest=.*)$/m;
            my $data = "$repo/t/data/atecc608";
            my $mchp_sn = '01230390B3D1450C01';
            run_ok("build/device-auth import-manifest --roots $data/root-crypto-authentication-root-ca-002.pem --log-signers $data/manifest-signer-log-signer-002.pem $data/manifest-trustandgo-atecc608a-mah4i.json");
            is(cli('GET', key($mchp_sn, 'registered')), $example,
               'manifest: the example value is what the import writes for '
               . 'Microchip\'s sample');
            cli('DEL', key($mchp_sn, 'registered'),
                key('0123D26E26E688C901', 'registered'));
        },
    },

    {
        name => 'the key of a certificate file',
        match => qr/^openssl x509 -in device\.pem -noout -pubkey \| openssl pkey -pubin -outform DER \| sha256sum$/,
        run => sub {
            my ($cmd) = @_;
            my ($hex) = run_ok($cmd) =~ /^([0-9a-f]{64}) /;
            my ($reg) = cli('GET', key($SN, 'registered'))
                        =~ /spki_sha256=([0-9a-f]{64})/;
            ok($hex && $reg && $hex eq $reg,
               'spki_sha256: what the import recorded for the device');
        },
    },

    # one device, all of it
    {
        name => 'show a device',
        match => qr/^build\/device-auth show \w+$/,
        run => sub {
            my ($cmd) = @_;
            cli('DEL', key($SN, 'seen'), key($SN, 'revoked'),
                key($SN, 'evrl'));

            my @got;
            for my $a (map { "127.0.0.$_" } 1 .. 4) {
                my ($st, $xs) = req($SN, '/clones', local_addr => $a);
                push @got, "$st $xs";
            }
            is($got[-1], '403 quarantined', 'show: a clone quarantined');

            # the devices the edges counted today
            my $day = POSIX::strftime('%Y-%m-%d', gmtime((cli('TIME'))[0]));
            cli('PFADD', "device_auth:devices:$day", $SN);
            my $n = cli('PFCOUNT', "device_auth:devices:$day");

            my $out = run_ok($cmd);
            like($out, qr/^fleet: +$n distinct devices seen today \($day UTC\)$/m,
                 'show: the devices counted today');
            like($out, qr/^device $SN in redis 127\.0\.0\.1:$redis_port db 0, prefix "device_auth:"$/m,
                 'show: the device and where');
            like($out, qr/^state: +quarantined, reason "quarantined: cloned device seen at 4 places within 600s: [^"]*", ends in \d+m\d+s$/m,
                 'show: quarantined, why, for how long');
            like($out, qr/^registered: +yes, from manifest sha256 [0-9a-f]{64}$/m,
                 'show: registered from the manifest');
            like($out, qr/^seen: +4 places in the duplicate window, forgotten in \d+m\d+s:$/m,
                 'show: the 4 places');
            like($out, qr/^ +\d{4}-\S+ \(\d+s ago\) "quarantined" edge "\S+" location "127\.0\.0\.4" reason "seen at 4 places within 600s: /m,
                 'show: the quarantine event');
            like($out, qr/^ +\d{4}-\S+ \(\d+s ago\) "quarantined" .* edges "[^"]+"$/m,
                 'show: the edges that saw the clone');
            like($out, qr/^signer: +$signer: in service$/m,
                 'show: its signer');

            # the example of the runbook has the lines of the real thing
            my ($example) = $doc =~ /^(    device \S+ in redis .*?)\n\n/ms;
            my $labels = sub { join ' ', $_[0] =~ /^ {0,4}(device|\w+:) /mg };
            is($labels->($example =~ s/^    //mgr), $labels->($out),
               'show: the runbook example has the same lines');

            cli('DEL', key($SN, 'seen'), key($SN, 'revoked'));
        },
    },

    # registry: one serial
    {
        name => 'register one serial',
        match => qr/^redis-cli SET '[^']*\{\w+\}:registered' \S+$/,
        run => sub {
            my ($cmd) = @_;
            my ($batch) = $cmd =~ /(\S+)$/;
            cli('DEL', key($SN, 'registered'));
            status_is($SN, '/registry', '403 unregistered',
                      'register: unregistered before, with the registry on');
            is(run_ok($cmd), "OK\n", 'register: OK');
            status_is($SN, '/registry', '200 ok', 'register: 200 ok');
            is(cli('GET', key($SN, 'registered')), $batch,
               'register: the value is the batch');
        },
    },

    # registry: a batch, with device-auth
    {
        name => 'load a manufacturing batch',
        match => qr/^printf .* > (\S+)\nbuild\/device-auth register --from \1 --batch \S+$/,
        run => sub {
            my @cmd = @_;
            my ($file) = $cmd[1] =~ /--from (\S+)/;
            my ($batch) = $cmd[1] =~ /--batch (\S+)$/;
            my @serials = map { "0123A1B2C3D4E5F6$_" } qw(A7 A8 A9 AA);
            cli('DEL', map { key($_, 'registered') } @serials);
            status_is($serials[1], '/registry', '403 unregistered',
                      'batch: A8 unregistered before');

            run_ok($cmd[0]);
            like($t->read_file("$wd/$file"), qr/\r\n/,
                 'batch: the file has CRLF line ends');

            my @doc_lines = $doc =~ /^ {4}(\Q$file\E:\d+ .*|summary: \d+ entries, \d+ registered, .*)$/mg;
            is_deeply([lines(run_ok($cmd[1]))], \@doc_lines,
                      'batch: the lines the runbook shows');
            like(run_ok($cmd[1]), qr/^\Q$file\E:2 $serials[0] already registered, the same value$/m,
                 'batch: again, harmless');

            status_is($_, '/registry', '200 ok', "batch: $_ registered")
                for @serials[0 .. 2];
            is(cli('GET', key($serials[1], 'registered')), $batch,
               'batch: the value is the batch');
            status_is($serials[3], '/registry', '403 unregistered',
                      'batch: a serial not in the batch is not');
            is(cli('EXISTS', "device_auth:{0123a1b2c3d4e5f6a8}:registered"),
               0, 'batch: no lower-case key');

            # the old recipe's traps: none of them loses an entry silently
            $t->write_file("$wd/traps.csv", "SN;comment\r\n"
                           . "SN0123A1B2C3D4E5F6AA;\"new, batch\"\r\n"
                           . "0123A1B2C3D4E5F6A;typo\r\n");
            my ($rc, $out) = sh("build/device-auth register --from "
                                . "traps.csv --batch b");
            is($rc, 1, 'batch traps: exit 1');
            like($out, qr/^traps\.csv:2 $serials[3] registered\ntraps\.csv:3 "0123A1B2C3D4E5F6A" refused: not a serial/m,
                 'batch traps: the good one written, the typo refused');
            is(cli('GET', key($serials[3], 'registered')), 'new, batch',
               'batch traps: its own batch column, comma and all');
            cli('DEL', key($serials[3], 'registered'));
        },
    },

    {
        name => 'list registered',
        match => qr/^build\/device-auth list registered$/,
        run => sub {
            my ($cmd) = @_;
            my $spki = DeviceAuth::Manifest::spki_sha256("$wd/device.pem");
            my $value = "manifest=" . ('ab' x 32) . " part=ATECC608A-TNGTLS "
                        . "provisioned=2026-11-02T10:00:00Z signer=$signer "
                        . "spki_sha256=$spki";
            cli('SET', key($SN, 'registered'), $value);

            my ($rc, $out, $err) = sh($cmd);
            is($rc, 0, 'list registered: exit 0');
            is_deeply([sort(lines($out))],
                      ["$SN\tmanifest\t$spki\t\"$value\"",
                       map { "0123A1B2C3D4E5F6$_\thand\t-\t\"batch-2026-11\"" }
                           qw(A8 A9)],
                      'list registered: the key recorded, the batches');
            like($err, qr/^list: 3 registered: 1 from a manifest \(the chip's key recorded\), 2 by hand, 0 neither$/,
                 'list registered: the counts');
        },
    },

    # registry: count, remove one
    {
        name => 'count the registered serials, remove one',
        match => qr/^redis-cli --scan --pattern '[^']*:registered' \| wc -l\nredis-cli DEL '[^']*\{\w+\}:registered'$/,
        run => sub {
            my @cmd = @_;
            my ($gone) = $cmd[1] =~ /\{(\w+)\}/;
            my @serials = map { "0123A1B2C3D4E5F6$_" } qw(A7 A8 A9);
            cli('DEL', map { key("0123A1B2C3D4E5F6$_", 'registered') }
                       qw(A7 A8 A9 AA B0 B1));
            cli('SET', key($_, 'registered'), 'b') for @serials;
            cli('SET', key($_, 'revoked'), 'not counted') for @serials;

            like(run_ok($cmd[0]), qr/^\s*3$/, 'count: 3 registered');
            cli('DEL', map { key($_, 'revoked') } @serials);

            status_is($gone, '/registry', '200 ok', "remove: $gone registered");
            is(run_ok($cmd[1]), "1\n", 'remove: deleted');
            status_is($gone, '/registry', '403 unregistered',
                      "remove: $gone unregistered");
        },
    },

    # events: read
    {
        name => 'read the events stream',
        match => qr/^redis-cli XRANGE \S+ - \+ COUNT \d+\nredis-cli XREVRANGE \S+ \+ - COUNT \d+\nredis-cli XLEN \S+$/,
        run => sub {
            my @cmd = @_;
            my $B0 = '0123A1B2C3D4E5F6B0';
            my @first = events();
            ok(@first > 0, 'events: some events written so far');

            cli('SET', key($B0, 'revoked'), 'newest event');
            status_is($B0, '/', '403 revoked', 'events: a new revoked event');
            cli('DEL', key($B0, 'revoked'));

            my @all = events();
            my $oldest = run_ok($cmd[0]);
            like($oldest, qr/\A\Q$all[0]{id}\E\n/, 'XRANGE: the oldest first');
            for my $f (qw(type serial signer location edge reason)) {
                like($oldest, qr/^$f$/m, "XRANGE: field $f");
            }

            my @newest = lines(run_ok($cmd[1]));
            is($newest[0], $all[-1]{id}, 'XREVRANGE: the newest first');
            my %e = @newest[1 .. 12];
            is_deeply([@e{qw(type serial signer location reason)}],
                      ['revoked', $B0, $signer, '127.0.0.1', 'newest event'],
                      'XREVRANGE: the event just written');
            like($e{edge}, qr/^\S+$/, 'XREVRANGE: edge is a host name');

            is(run_ok($cmd[2]), scalar(@all) . "\n", 'XLEN: the length');
        },
    },

    # events: follow
    {
        name => 'wait for the next event',
        match => qr/^redis-cli XREAD BLOCK 0 STREAMS \S+ \$$/,
        run => sub {
            my ($cmd) = @_;
            my $B1 = '0123A1B2C3D4E5F6B1';
            my ($pid, $out, $err) = sh($cmd, bg => 1);

            # blocked in Redis before the event comes
            my $end = time() + 5;
            sleep(0.05) until time() > $end
                              || grep { /cmd=xread/ } cli('CLIENT', 'LIST');

            cli('SET', key($B1, 'revoked'), 'followed');
            status_is($B1, '/', '403 revoked', 'follow: an event happens');
            cli('DEL', key($B1, 'revoked'));

            my ($rc, $o, $e) = finish($pid, $out, $err, 5);
            is($rc, 0, 'follow: XREAD returned with the event');
            my @l = lines($o);
            is($l[0], 'device_auth:events', 'follow: the stream');
            like($o, qr/^serial\n\Q$B1\E$/m, 'follow: the event of the device');
            like($o, qr/^reason\nfollowed$/m, 'follow: its reason');
        },
    },

    # the canary
    {
        name => 'set the canary',
        match => qr/^redis-cli SET '[^']*:canary' '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($key) = $cmd =~ /SET '([^']*)'/;
            my ($name) = $key =~ /^device_auth:(.*)$/;
            ok($name, 'canary: a key under the prefix');

            # an edge that names it, on the same Redis
            my $e = DeviceAuth::Test->new();
            $e->write_conf(<<"EOF");
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_redis 127.0.0.1:$redis_port;
    device_auth_redis_canary $name;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;
        add_header X-Status \$device_auth_status always;

        location / {
            device_auth on;
            device_auth_grace 0;
            return 200 "ok\\n";
        }
    }
}
EOF
            cli('DEL', $key);
            $e->run();

            my $st = sub {
                my $r = $e->https_get(device => $dev{$SN});
                return ($r->{status} || 0) . ' '
                       . ($r->{headers}{'x-status'} || '-');
            };
            my $until = sub {
                my ($want) = @_;
                my $end = time() + 10;
                my $got = '';
                while (time() < $end) {
                    return 1 if ($got = $st->()) eq $want;
                    sleep(0.05);
                }
                diag("canary: \"$got\", not \"$want\"");
                return 0;
            };

            is($st->(), '503 error', 'canary: missing, the edge refuses');
            like($e->read_error_log(), qr/\[crit\] [^\n]*redis canary "\Q$key\E" missing/,
                 'canary: missing, at crit');

            is(run_ok($cmd), "OK\n", 'canary: set');
            ok($until->('200 ok'), 'canary: set, the edge serves');

            cli('DEL', $key);
            ok($until->('503 error'), 'canary: deleted, the edge refuses '
               . 'again at once');
            run_ok($cmd);
            ok($until->('200 ok'), 'canary: set again, served');

            $e->check_error_log();
            cli('DEL', $key);
        },
    },

    # the day's devices
    {
        name => 'how many devices today',
        match => qr/^redis-cli PFCOUNT "device_auth:devices:\$\(date -u \+%F\)"$/,
        run => sub {
            my ($cmd) = @_;
            req($SN, '/');

            # the devices whose certificate passed: the runbook's
            # log_format has their serial
            my %seen = map { /\bserial=(\S+)/ && $1 ne '-' ? ($1 => 1) : () }
                       split /\n/, $t->read_file('devices.log');
            my $want = scalar keys %seen;
            ok($want > 5, "devices today: $want devices made requests");
            # (other steps' devices, in other servers and locations of the
            # runbook's edge, are counted too: at least these)
            my $got = 0;
            my $end = time() + 5;
            while (time() < $end) {
                ($got = run_ok($cmd)) =~ s/\s+$//;
                last if $got >= $want;
                sleep(0.05);
            }
            cmp_ok($got, '>=', $want, "devices today: every device that "
                   . "passed its certificate checks ($want) counted");
        },
    },

    # sightings
    {
        name => 'see where a serial was seen',
        match => qr/^redis-cli ZRANGE '[^']*:seen' 0 -1 WITHSCORES$/,
        run => sub {
            my ($cmd) = @_;
            cli('DEL', key($SN, 'seen'), key($SN, 'revoked'));

            # a clone: seen at 4 places, caught by the quarantine action
            my @places = map { "127.0.0.$_" } 1 .. 4;
            my @got;
            for my $a (@places) {
                my ($st, $xs) = req($SN, '/clones', local_addr => $a);
                push @got, "$st $xs";
            }
            is_deeply(\@got, [('200 ok') x 3, '403 quarantined'],
                      'seen: a clone caught at the 4th place');

            my @l = lines(run_ok($cmd));
            my %seen = @l;
            is_deeply([sort keys %seen], \@places, 'ZRANGE: the places');
            my $now = time() * 1000;
            ok(!grep({ abs($_ - $now) > 60000 } values %seen),
               'ZRANGE: scores are times in ms')
                or diag(explain \%seen);
        },
    },

    {
        name => 'lift a quarantine',
        match => qr/^build\/device-auth release \w+ --reason '[^']*'$/,
        run => sub {
            my ($cmd) = @_;
            my ($why) = $cmd =~ /'([^']*)'$/;
            status_is($SN, '/', '403 quarantined',
                      'release: quarantined by the edge before');

            my $out = run_ok($cmd);
            my @doc_lines = $doc =~ /^ {4}(\Q$SN\E released, .*|summary: 1 entry, 1 released, .*)$/mg;
            is_deeply([lines($out =~ s/\(\d+m\d+s left\)/(LEFT)/r)],
                      [map { s/\(\d+m\d+s left\)/(LEFT)/r } @doc_lines],
                      'release: the lines the runbook shows');

            is(cli('EXISTS', key($SN, 'seen'), key($SN, 'revoked')), 0,
               'release: quarantine and places gone');
            is(join(',', map { join ' ', (req($SN, '/clones',
                                              local_addr => $_))[0, 1] }
                         qw(127.0.0.1 127.0.0.2 127.0.0.5)),
               '200 ok,200 ok,200 ok',
               'release: let in at its next request, and not quarantined '
               . 'again');
            is(scalar(() = cli('ZRANGE', key($SN, 'seen'), 0, -1)), 3,
               'release: counting places from one again');

            my ($a) = $t->redis_stream('device_auth:audit', '+', '-',
                                       'COUNT', 1);
            is_deeply([@{$a}{qw(what serial reason places)}],
                      ['release', $SN, $why, 4],
                      'release: the audit entry, the places forgotten');
            like($a->{previous}, qr/^quarantined: cloned device /,
                 'release: the quarantine lifted, in the audit');

            # never a revocation
            cli('SET', key($SN, 'revoked'), 'stolen for good');
            my ($rc, $o) = sh($cmd);
            is($rc, 1, 'release of a revocation: exit 1');
            like($o, qr/^$SN refused: revoked, not quarantined: "stolen for good": release lifts only quarantines/m,
                 'release of a revocation: refused, said why');
            status_is($SN, '/', '403 revoked',
                      'release of a revocation: still revoked');
            cli('DEL', key($SN, 'revoked'), key($SN, 'seen'));
        },
    },

    # Redis Cluster: the same commands with -c (t/cluster.t runs them on a
    # cluster; here on one Redis, where -c changes nothing)
    {
        name => 'cluster: revoke, check, unrevoke with -c',
        match => qr/^redis-cli -c SET '[^']*\{\w+\}:revoked' '[^']*'\nredis-cli -c GET '[^']*:revoked'\nredis-cli -c DEL '[^']*:revoked'$/,
        run => sub {
            my @cmd = @_;
            my ($reason) = $cmd[0] =~ /'([^']*)'$/;
            cli('DEL', key($SN, 'revoked'));
            status_is($SN, '/', '200 ok', 'cluster: 200 ok before');
            is(run_ok($cmd[0]), "OK\n", 'cluster: SET -c: OK');
            status_is($SN, '/', '403 revoked', 'cluster: revoked');
            is(run_ok($cmd[1]), "$reason\n", 'cluster: GET -c: the reason');
            is(run_ok($cmd[2]), "1\n", 'cluster: DEL -c: one key');
            status_is($SN, '/', '200 ok', 'cluster: unrevoked');
        },
    },

    {
        name => 'cluster: list revoked devices node by node',
        match => qr/^redis-cli -c CLUSTER NODES \| awk .* --scan --pattern '[^']*:revoked'; done$/,
        run => sub {
            my ($cmd) = @_;
            revoke_two();
            # one Redis is no cluster: nothing to list, and no error
            is(run_ok($cmd), '', 'cluster listing: runs, lists nothing on '
               . 'one Redis (t/cluster.t lists on a cluster)');
        },
    },
    {
        name => 'the audit stream',
        match => qr/^redis-cli XREVRANGE device_auth:audit \+ - COUNT 20$/,
        run => sub {
            my ($cmd) = @_;
            my @l = lines(run_ok($cmd));
            my @a = $t->redis_stream('device_auth:audit', '+', '-',
                                     'COUNT', 20);
            ok(@a > 5, 'audit: the runbook\'s changes are there');
            is($l[0], $a[0]{id}, 'audit: the newest first');
            like(join("\n", @l), qr/^what\nrelease\nserial\n$SN\n/m,
                 'audit: the last release');
            my %what = map { $_->{what} => 1 }
                       $t->redis_stream('device_auth:audit');
            is(join(' ', sort keys %what),
               'quarantine register release revoke unrevoke',
               'audit: every kind of change the runbook made');

            # a change with redis-cli is not in it
            my $n = () = $t->redis_stream('device_auth:audit');
            cli('SET', key($SN, 'revoked'), 'by hand');
            cli('DEL', key($SN, 'revoked'));
            is(scalar(() = $t->redis_stream('device_auth:audit')), $n,
               'audit: redis-cli changes leave no entry');
        },
    },

    {
        name => 'find the keys no edge reads',
        match => qr/^build\/device-auth lint$/,
        run => sub {
            my ($cmd) = @_;

            # what the runbook wrote so far is all read by the edges
            my ($rc, $out) = sh($cmd);
            is($rc, 0, 'lint: the runbook left no key an edge does not read')
                or diag($out);
            like($out, qr/^summary: \d+ keys under "device_auth:", 0 findings; registered values: \d+ in the import format, \d+ by hand, 0 neither; 0 other keys$/m,
                 'lint: the summary');

            # the runbook's example
            my @doc_lines = $doc =~ /^ {4}((?:lower-case-serial|signer-id) .*)$/mg;
            is(scalar @doc_lines, 2, 'lint: the runbook shows two findings');
            for (@doc_lines) {
                my ($k) = /^\S+ "([^"]*)"/;
                cli('SET', $k, 'written by mistake');
            }
            ($rc, $out) = sh($cmd);
            is($rc, 1, 'lint: exit 1 with findings');
            is_deeply([sort grep { !/^summary/ } lines($out)],
                      [sort @doc_lines], 'lint: the lines the runbook shows');
            cli('DEL', map { /^\S+ "([^"]*)"/ } @doc_lines);
        },
    },

    {
        name => 'check the pinned certificates',
        match => qr/^build\/device-auth pins roots\.pem signers\.pem$/,
        run => sub {
            my ($cmd) = @_;
            my @l = lines(run_ok($cmd));
            my @want;
            for (['roots.pem', 'root'], ['signers.pem', 'signer1'],
                 ['signers.pem', 'signer2'])
            {
                my ($f, $c) = @$_;
                push @want, sprintf('%s ok %s', $f,
                                    cert_fingerprint($t->pki_file("$c.pem")));
            }
            is_deeply([map { /^(\S+):\d+ (\S+) id=(\S+) / ? "$1 $2 $3" : $_ }
                           grep { !/^summary/ } @l],
                      \@want,
                      'pins: each certificate, ok, its id as the edge computes it');

            # the runbook's example is Microchip's root
            my ($example) = $doc =~ /^ {4}(roots\.pem:1 ok id=.*)$/m;
            my $root = "$repo/t/data/atecc608/root-crypto-authentication-root-ca-002.pem";
            copy_file($root, "$wd/mchp/roots.pem");
            my ($line) = lines(run_ok('../build/device-auth pins roots.pem',
                                      dir => "$wd/mchp"));
            is(($line // '') =~ s/days_left=\d+/days_left=N/r,
               ($example // '') =~ s/days_left=\d+/days_left=N/r,
               'pins: the runbook\'s line, Microchip\'s Root CA 002');
        },
    },

    {
        name => 'devices seen today',
        match => qr/^build\/device-auth count$/,
        run => sub {
            my ($cmd) = @_;
            my $day = POSIX::strftime('%Y-%m-%d', gmtime((cli('TIME'))[0]));
            cli('PFADD', "device_auth:devices:$day", map { "ops-$_" } 1 .. 50);
            my $n = cli('PFCOUNT', "device_auth:devices:$day");
            is(run_ok($cmd), "$day $n\n", "count: today's count ($n)");
        },
    },

);

# the edge quarantines a device as a clone: seen at 4 places of /clones
# (the limit is 3); the statuses of the 4 requests
sub edge_quarantine {
    my ($serial) = @_;
    cli('DEL', key($serial, 'seen'), key($serial, 'revoked'),
        key($serial, 'evrl'));
    return join ',', map { join ' ', (req($serial, '/clones',
                                          local_addr => "127.0.0.$_"))[0, 1] }
                     1 .. 4;
}

# revokes two devices, quarantines... for the listings
sub revoke_two {
    my @keys = (key('0123A1B2C3D4E5F6A8', 'revoked'),
                key('0123A1B2C3D4E5F6A9', 'revoked'));
    cli('DEL', map { key("0123A1B2C3D4E5F6$_", 'revoked') }
               qw(A7 A8 A9 AA B0 B1));
    cli('SET', $keys[0], 'stolen, listed');
    cli('SET', $keys[1], 'quarantined: listed', 'EX', 3600);
    cli('SET', signer_key($signer2, 'revoked'), 'a signer, not listed');
    cli('SET', key('0123A1B2C3D4E5F6A8', 'registered'), 'not listed');
    return sort @keys;
}


###############################################################################
# run the runbook, in its order

my %used;

for my $b (@sh) {
    my $text = join "\n", commands($b->[1]);
    my @h = grep { $text =~ $_->{match} } @handlers;

    if (@h != 1) {
        fail(sprintf('operations.md line %d: %s sh block', $b->[2],
                     @h ? 'ambiguous' : 'unknown'));
        diag($text);
        diag('handlers: ' . join ', ', map { $_->{name} } @h) if @h;
        next;
    }

    $used{$h[0]{name}}++;
    note("operations.md line $b->[2]: $h[0]{name}");
    $h[0]{run}->(commands($b->[1]));
}

for my $h (@handlers) {
    is($used{$h->{name}} || 0, 1, "runbook block used once: $h->{name}");
}


###############################################################################
# the inline "device-auth check" command

my ($certcheck) = $doc =~ /`(build\/device-auth check [^`]+)`/;
ok($certcheck, 'the runbook names a device-auth check command');
if ($certcheck) {
    my $out = run_ok($certcheck);
    my $fp = cert_fingerprint("$wd/device.pem");
    like($out, qr/\bserial=$SN\b.*\bsigner=$signer\b.*\bfingerprint=$fp\b/,
         'certcheck: serial, signer id and fingerprint');
}


###############################################################################
# the status table: what the statuses seen here came with

req(undef, '/');                     # no certificate
req('dev_rogue', '/');               # another company's root
# Redis down: a device the edge has not cached (a cached one is served
# from the cache for device_auth_grace, t/edge-state.t)
my $uncached = $t->make_device(name => 'uncached',
                               serial => '0123A1B2C3D4E5F6C0');
$t->redis_stop();
req($uncached, '/');                 # closed, Redis down
req($uncached, '/open');
$t->redis_start();

my %table;
for (split /\n/, $doc) {
    next unless /^\|\s*(\d{3})[^|]*\|\s*`(\w+)`\s*\|/;
    $table{$2}{$1} = 1;
}

for my $st (sort keys %observed) {
    for my $code (sort keys %{ $observed{$st} }) {
        ok($table{$st}{$code}, "status table: $st with $code");
    }
}

ok($observed{$_}, "status seen: $_")
    for qw(ok revoked quarantined signer_revoked signer_compromised
           unregistered no_cert invalid error unchecked);

$t->check_error_log();

done_testing();
