/* api/idem_seal.c -- AES-256-GCM for stored Idempotency-Key responses (api/idem_int.h). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "api/idem_int.h"
#include "api/keys_int.h"
#include "core/log.h"
#include "core/mem.h"

#define NONCE 12
#define TAG   16

/* SHA-256 of a domain label and the secret: not api_keys.hash (SHA-256 of the secret
 * alone), so the stored hash does not open what this key sealed. */
static void derive(const char *secret, uint8_t key[32])
{
    static const char label[] = "flowd idempotency v1";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    fl_assert(ctx != NULL);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, label, sizeof(label)); /* with its NUL: an unambiguous prefix */
    EVP_DigestUpdate(ctx, secret, strlen(secret));
    EVP_DigestFinal_ex(ctx, key, NULL);
    EVP_MD_CTX_free(ctx);
}

bool fl_idem__seal(const char *secret, const void *plain, size_t len, uint8_t **out,
                   size_t *out_len)
{
    uint8_t key[32], *buf = fl_xmalloc(len + NONCE + TAG);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    bool ok;

    derive(secret, key);
    ok = ctx != NULL && len <= (size_t)INT32_MAX && fl_keys__random(buf, NONCE, NULL) == FL_OK &&
         EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
         EVP_EncryptUpdate(ctx, buf + NONCE, &n, plain, (int)len) == 1 &&
         EVP_EncryptFinal_ex(ctx, buf + NONCE + n, &m) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, buf + NONCE + n + m) == 1;
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok) {
        free(buf);
        return false;
    }
    *out = buf;
    *out_len = NONCE + (size_t)(n + m) + TAG;
    return true;
}

bool fl_idem__open(const char *secret, const uint8_t *sealed, size_t len, char **plain,
                   size_t *plain_len)
{
    uint8_t key[32];
    size_t clen = len >= NONCE + TAG ? len - NONCE - TAG : 0;
    char *buf = fl_xmalloc(clen + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    bool ok;

    derive(secret, key);
    ok = ctx != NULL && len >= NONCE + TAG && clen <= (size_t)INT32_MAX &&
         EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, sealed) == 1 &&
         EVP_DecryptUpdate(ctx, (uint8_t *)buf, &n, sealed + NONCE, (int)clen) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, (void *)(sealed + len - TAG)) == 1 &&
         EVP_DecryptFinal_ex(ctx, (uint8_t *)buf + n, &m) == 1;
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok) {
        free(buf);
        return false;
    }
    buf[n + m] = '\0';
    *plain = buf;
    *plain_len = (size_t)(n + m);
    return true;
}
