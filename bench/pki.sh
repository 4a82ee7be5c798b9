# bench/pki.sh: shared by bench/lib.sh and bench/selftest.sh (sourced):
# the test PKI, free ports, pieces of nginx.conf.

free_port() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                      LocalPort => 0, ReuseAddr => 1)
            or die "no port: $!";
        print $s->sockport, "\n";'
}

# the http{} temp paths of an nginx under dir, so that no instance writes
# into Debian's /var/lib/nginx
temp_paths() {    # dir
    printf '    %s_temp_path %s/tmp/%s;\n' client_body "$1" body \
        proxy "$1" proxy fastcgi "$1" fastcgi uwsgi "$1" uwsgi scgi "$1" scgi
}

# root -> signer (the devices are made from it by loadgen) and
# root -> server, P-256, in dir: root.pem, signer.pem/.key, server.pem/.key
# and root-signer.pem (stock nginx's ssl_client_certificate)
make_pki() {      # dir organisation
    local dir=$1 org=$2 n
    local ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

    mkdir -p "$dir"
    cat > "$dir/ext.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[signer]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
EOF
    (
        cd "$dir"
        openssl req -x509 $ec -keyout root.key -out root.pem -days 3650 \
            -subj "/O=$org/CN=$org Root" \
            -config ext.cnf -extensions root 2>/dev/null
        for n in signer server; do
            openssl req -new $ec -keyout $n.key -out $n.csr -config ext.cnf \
                -subj "/O=$org/CN=$org $n" 2>/dev/null
            openssl x509 -req -in $n.csr -CA root.pem -CAkey root.key \
                -CAcreateserial -out $n.pem -days 3650 -extfile ext.cnf \
                -extensions $n 2>/dev/null
        done
        cat root.pem signer.pem > root-signer.pem
    )
}
