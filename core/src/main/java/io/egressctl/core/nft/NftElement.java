package io.egressctl.core.nft;

/**
 * One element of an nftables set or map, as values: its key (the identity inside its set, as nft
 * reads it), an optional comment and, in a map, the data it maps to. Two elements of one set with
 * the same key are the same element; a changed comment or data is a changed element.
 *
 * @param key     the key as nft reads it, e.g. {@code 0x45a1b2c3 . tcp . 80-80} or {@code "tap1"}
 * @param comment the element's comment without quotes, or null
 * @param data    a map element's data ({@code accept}, a mark), or null in a set
 */
public record NftElement(String key, String comment, String data) {

    /** A set element with a comment (or none). */
    public static NftElement of(String key, String comment) {
        return new NftElement(key, comment, null);
    }

    /** The element as it is written inside {@code elements = { ... }}. */
    public String text() {
        if (comment == null && data == null) {
            return key;
        }
        StringBuilder sb = new StringBuilder(key.length() + (comment == null ? 0 : comment.length() + 11) + (data == null ? 0 : data.length() + 3));
        sb.append(key);
        if (comment != null) {
            sb.append(" comment \"").append(comment).append('"');
        }
        if (data != null) {
            sb.append(" : ").append(data);
        }
        return sb.toString();
    }
}
