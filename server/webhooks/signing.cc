#include "server/webhooks/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace approvald::server {

std::string WebhookSignature(const std::vector<std::string>& keys, absl::string_view id,
                             int64_t timestamp, absl::string_view body) {
  const std::string content = absl::StrCat(id, ".", timestamp, ".", body);
  std::string header;
  for (const std::string& key : keys) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &size);
    if (!header.empty()) header += ' ';
    absl::StrAppend(&header, "v1,",
                    absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(mac), size)));
  }
  return header;
}

}  // namespace approvald::server
