%{
  "liberlang_python_nif-v0.1.0-dev-nif-2.15-x86_64-unknown-linux-gnu--py3.11.so.tar.gz" => "sha256:2ebeda20261bf1120e8ccfbabb84f9a14491b909490290d7f30498847f1b0ffa",
}
