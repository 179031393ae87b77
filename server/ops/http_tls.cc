#include "server/ops/http_tls.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include <memory>
#include <type_traits>

namespace approvald::server {
namespace {

struct CertificateFree {
  void operator()(gnutls_x509_crt_t crt) const { gnutls_x509_crt_deinit(crt); }
};
using Certificate = std::unique_ptr<std::remove_pointer_t<gnutls_x509_crt_t>, CertificateFree>;

absl::Status NotVerified(const char* why) {
  return absl::UnauthenticatedError(
      std::string("a client certificate signed by --tls-client-ca is required: ") + why);
}

// The first alternative name of `wanted` type, or "".
std::string AltName(gnutls_x509_crt_t crt, unsigned wanted) {
  for (unsigned i = 0;; ++i) {
    char buf[1024];
    size_t size = sizeof(buf);
    const int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, nullptr);
    if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) return "";
    if (type < 0) continue;  // one too long or malformed: the next may do
    if (static_cast<unsigned>(type) == wanted) return std::string(buf, size);
  }
}

}  // namespace

absl::StatusOr<std::string> VerifiedClientIdentity(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (info == nullptr || info->tls_session == nullptr) return NotVerified("not a TLS connection");
  auto session = static_cast<gnutls_session_t>(info->tls_session);
  unsigned status = 0;
  if (gnutls_certificate_verify_peers2(session, &status) < 0) {
    return NotVerified("none was presented");
  }
  if (status != 0) return NotVerified("it does not verify");
  unsigned count = 0;
  const gnutls_datum_t* chain = gnutls_certificate_get_peers(session, &count);
  if (chain == nullptr || count == 0) return NotVerified("none was presented");
  gnutls_x509_crt_t raw = nullptr;
  if (gnutls_x509_crt_init(&raw) < 0) return NotVerified("out of memory");
  Certificate crt(raw);
  if (gnutls_x509_crt_import(crt.get(), &chain[0], GNUTLS_X509_FMT_DER) < 0) {
    return NotVerified("it cannot be read");
  }
  for (unsigned type : {GNUTLS_SAN_URI, GNUTLS_SAN_DNSNAME}) {
    if (std::string name = AltName(crt.get(), type); !name.empty()) return name;
  }
  char cn[256];
  size_t size = sizeof(cn);
  if (gnutls_x509_crt_get_dn_by_oid(crt.get(), GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size) == 0) {
    return std::string(cn, size);
  }
  return std::string();  // verified, but names nobody: tokens decide
}

}  // namespace approvald::server
