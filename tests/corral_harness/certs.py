"""Certificates made at test time with the `openssl` command.

    pki = Pki(tmp_path)                     # a fresh certificate authority
    srv = pki.issue("server.1", ips=["127.0.0.1"], dns=["localhost"])
    cli = pki.issue("alice", client=True)
    old = pki.issue("late", expired=True)   # valid in 2020 only
    rogue = Pki(tmp_path / "rogue").issue("server.1", ips=["127.0.0.1"])  # another CA

    pki.revoke(cli); pki.write_crl(path)    # a revocation list naming it
    pki.write_crl(path, expired=True)       # one whose nextUpdate has passed

Each issued identity has .cert (PEM chain), .key (PEM key), .pem (both in
one file), .subject (RFC 2253, as the server reports it) and .p12(password)
to write a PKCS#12 copy. Keys are EC P-256 (quick to make) in PKCS#8, which
Java's PEM reader needs.
"""
import pathlib
import subprocess


def _run(*args, cwd=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


class Identity:
    def __init__(self, pki, name, cert, key, subject):
        self.pki = pki
        self.name = name
        self.cert = cert
        self.key = key
        self.subject = subject
        self.pem = cert.parent / (cert.name[:-4] + ".both.pem")
        self.pem.write_text(key.read_text() + cert.read_text())

    def p12(self, password="changeit"):
        out = self.cert.parent / (self.cert.name[:-4] + ".p12")
        _run("pkcs12", "-export", "-in", str(self.cert), "-inkey", str(self.key),
             "-certfile", str(self.pki.ca_cert), "-name", self.name,
             "-out", str(out), "-passout", f"pass:{password}")
        return out


class Pki:
    def __init__(self, directory, name="Corral Test CA"):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = self.dir / "ca.key"
        self.ca_cert = self.dir / "ca.pem"
        self.serial = 1
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(self.ca_key))
        _run("req", "-x509", "-new", "-key", str(self.ca_key), "-sha256", "-days", "30",
             "-subj", f"/O=Corral Tests/CN={name}", "-out", str(self.ca_cert),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        # For certificates outside today's validity: `openssl ca` takes dates.
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        (self.dir / "ca.cnf").write_text(
            "[ca]\ndefault_ca = test\n"
            "[test]\n"
            f"dir = {self.dir}\n"
            "database = $dir/index.txt\nnew_certs_dir = $dir\nserial = $dir/serial\n"
            "certificate = $dir/ca.pem\nprivate_key = $dir/ca.key\n"
            "default_md = sha256\npolicy = anything\nunique_subject = no\n"
            "copy_extensions = copy\n"
            "[anything]\ncommonName = supplied\norganizationName = optional\n")

    def issue(self, cn, ips=(), dns=(), client=True, server=True, expired=False, org="Corral Tests"):
        """A key and a certificate for `cn`, with these subjectAltNames."""
        base = cn.replace("/", "_")
        key, csr, cert = (self.dir / (base + ext) for ext in (".key", ".csr", ".pem"))
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
        sans = [f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns]
        usage = ",".join(u for u, on in (("serverAuth", server), ("clientAuth", client)) if on)
        ext = [
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext", f"extendedKeyUsage={usage}",
        ] + (["-addext", "subjectAltName=" + ",".join(sans)] if sans else [])
        _run("req", "-new", "-key", str(key), "-subj", f"/O={org}/CN={cn}", "-out", str(csr), *ext)
        self.serial += 1
        if expired:
            _run("ca", "-batch", "-config", str(self.dir / "ca.cnf"), "-in", str(csr),
                 "-out", str(cert), "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
                 "-notext")
        else:
            _run("x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey", str(self.ca_key),
                 "-set_serial", str(self.serial), "-days", "30", "-sha256", "-copy_extensions", "copy",
                 "-out", str(cert))
        return Identity(self, cn, cert, key, f"CN={cn},O={org}")

    def revoke(self, ident):
        """Records `ident`'s certificate as revoked; the next write_crl lists it."""
        _run("ca", "-batch", "-config", str(self.dir / "ca.cnf"), "-revoke", str(ident.cert))

    def write_crl(self, path=None, expired=False):
        """Writes this authority's revocation list (PEM) to `path` (default
        crl.pem beside the CA), replacing the file in one rename so a reader
        never sees half of it; returns the path."""
        path = pathlib.Path(path or self.dir / "crl.pem")
        tmp = path.with_name(path.name + ".tmp")
        dates = (["-crl_lastupdate", "20200101000000Z", "-crl_nextupdate", "20200201000000Z"]
                 if expired else ["-crldays", "30"])
        _run("ca", "-batch", "-config", str(self.dir / "ca.cnf"), "-gencrl", *dates, "-out", str(tmp))
        tmp.replace(path)
        return path
