%{
  "liberlang_python_nif-v0.1.0-dev-nif-2.15-x86_64-unknown-linux-gnu--py3.11.so.tar.gz" => "sha256:90712c1a206baae1c6ee67968e7f364434881886706133af1d42b437f0330635",
  "liberlang_python_nif-v0.1.0-dev-nif-2.15-x86_64-unknown-linux-gnu--py3.13.so.tar.gz" => "sha256:ec1e3839ce532cd3b160230e4c7b9efbf44cffbedafc7b9995bccd43d1702f20",
}
