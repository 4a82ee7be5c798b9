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
        %e = (%e, splice(@l, 0, 12));
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
            ok($t->wait_error_log(qr/device_auth: device rejected with 403 \(revoked\): serial \Q$SN\E, signer $signer, location "127\.0\.0\.1", reason: \Q$reason\E, client: /,
                                  mark => $mark),
               'revoke: the error log line as the runbook shows it');

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

    # unrevoke
    {
        name => 'unrevoke a device',
        match => qr/^redis-cli DEL '[^']*\{\w+\}:revoked'$/,
        run => sub {
            my ($cmd) = @_;
            cli('SET', key($SN, 'revoked'), 'to be lifted');
            status_is($SN, '/', '403 revoked', 'unrevoke: revoked before');
            is(run_ok($cmd), "1\n", 'unrevoke: one key deleted');
            status_is($SN, '/', '200 ok', 'unrevoke: the next request is 200 ok');

            # "This also lifts a quarantine."
            cli('SET', key($SN, 'revoked'), 'quarantined: lifted early',
                'EX', 3600);
            status_is($SN, '/', '403 quarantined', 'unrevoke: quarantined before');
            is(run_ok($cmd), "1\n", 'unrevoke: quarantine key deleted');
            status_is($SN, '/', '200 ok', 'unrevoke: lifts a quarantine too');
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

    # list revoked with reasons
    {
        name => 'list revoked devices with the reasons',
        match => qr/^redis-cli --scan --pattern '[^']*:revoked' \| while read/,
        run => sub {
            my ($cmd) = @_;
            my @keys = revoke_two();
            is_deeply([sort(lines(run_ok($cmd)))],
                      ["$keys[0]\tstolen, listed",
                       "$keys[1]\tquarantined: listed"],
                      'list with reasons: key TAB reason, quarantines too');
            cli('DEL', @keys, signer_key($signer2, 'revoked'));
        },
    },

    # quarantine for a day
    {
        name => 'quarantine a device for a day',
        match => qr/^redis-cli SET '[^']*\{\w+\}:revoked' '[^']*' EX \d+$/,
        run => sub {
            my ($cmd) = @_;
            my ($reason, $ttl) = $cmd =~ /'([^']*)' EX (\d+)$/;
            is($ttl, 86400, 'quarantine: a day');
            like($reason, qr/^quarantined:/, 'quarantine: reason says so');

            # no event of this device in the last minute (the rate limit)
            cli('DEL', key($SN, 'revoked'), key($SN, 'evrl'));

            is(run_ok($cmd), "OK\n", 'quarantine: OK');
            my ($st, $xs, $xr) = req($SN, '/');
            is("$st $xs", '403 quarantined', 'quarantine: 403 quarantined');
            is($xr, $reason, 'quarantine: the reason');
            my $left = cli('TTL', key($SN, 'revoked'));
            ok($left > 86400 - 60 && $left <= 86400,
               "quarantine: TTL about a day ($left)");

            my $e = last_event($SN, 'quarantined');
            ok($e && $e->{reason} eq $reason,
               'quarantine: an attempt writes a quarantined event');

            cli('DEL', key($SN, 'revoked'));
            status_is($SN, '/', '200 ok', 'quarantine ended early by DEL');
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
            is("$st $xs", '403 unregistered',
               'compromised: an unregistered one is 403 unregistered '
               . 'without device_auth_registry');

            # the reason the runbook quotes
            (my $prose = $doc) =~ s/\s+/ /g;
            my ($doc_reason) = $prose =~ /reason `(signer compromised \([^`]*)`/;
            is($xr, $doc_reason, 'compromised: the reason the runbook quotes');
            like($xr, qr/\Q($value)\E/, 'compromised: it holds the value');

            my $e = last_event($A8, 'unregistered');
            ok($e && $e->{reason} eq $xr, 'compromised: an unregistered event');
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
            status_is($A8, '/', '403 unregistered', 'compromised undo: before');
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
            my @doc_lines = $doc =~ /^    (\Q$reel_name\E:\d+ .*|summary: .*)$/mg;
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

            my $out = run_ok($cmd);
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

    # registry: a batch
    {
        name => 'load a manufacturing batch',
        match => qr/^printf .* > (\S+)\nawk .* \1 \| redis-cli --pipe$/,
        run => sub {
            my @cmd = @_;
            my @serials = map { "0123A1B2C3D4E5F6$_" } qw(A7 A8 A9 AA);
            cli('DEL', map { key($_, 'registered') } @serials);
            status_is($serials[1], '/registry', '403 unregistered',
                      'batch: A8 unregistered before');

            run_ok($cmd[0]);
            for my $pass (1, 2) {
                like(run_ok($cmd[1]), qr/^errors: 0, replies: 3$/m,
                     "batch: --pipe ends with errors: 0, replies: 3 ($pass)");
            }

            status_is($_, '/registry', '200 ok', "batch: $_ registered")
                for @serials[0 .. 2];
            status_is($serials[3], '/registry', '403 unregistered',
                      'batch: a serial not in the batch is not');
            is(cli('EXISTS', "device_auth:{0123a1b2c3d4e5f6a8}:registered"),
               0, 'batch: no lower-case key');
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
        name => 'forget the sightings',
        match => qr/^redis-cli DEL '[^']*:seen'\nredis-cli DEL '[^']*:revoked'$/,
        run => sub {
            my @cmd = @_;
            status_is($SN, '/', '403 quarantined', 'forget: quarantined before');
            is(run_ok($cmd[0]), "1\n", 'forget: sightings deleted');
            status_is($SN, '/', '403 quarantined',
                      'forget: still quarantined without the second command');
            is(run_ok($cmd[1]), "1\n", 'forget: quarantine lifted');
            is(cli('EXISTS', key($SN, 'seen')), 0, 'forget: sightings gone');
            status_is($SN, '/clones', '200 ok',
                      'forget: the device is let in again');
            is(scalar(() = cli('ZRANGE', key($SN, 'seen'), 0, -1)), 1,
               'forget: counting places from one again');
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
);

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
    for qw(ok revoked quarantined signer_revoked unregistered no_cert
           invalid error unchecked);

$t->check_error_log();

done_testing();
