package io.egressctl.agent.enforce;

import io.egressctl.core.nft.NftRuleset;
import io.egressctl.core.nft.NftScript;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Enforces into a file: writes the ruleset as an nftables script ({@link NftScript#script}) where an operator (or a test) can read
 * it, atomically (write a sibling, then rename), so a reader never sees half a ruleset. For machines
 * without nft or root.
 */
public final class DryRunEnforcer implements Enforcer {

    private final Path file;

    public DryRunEnforcer(Path file) {
        this.file = file;
    }

    @Override
    public String name() {
        return "dry-run";
    }

    @Override
    public void apply(NftRuleset ruleset) throws EnforcementException {
        String script = NftScript.script(ruleset);
        try {
            Path parent = file.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            Path tmp = Files.createTempFile(parent, file.getFileName().toString(), ".tmp");
            Files.writeString(tmp, script, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new EnforcementException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public boolean inSync(NftRuleset ruleset) throws EnforcementException {
        try {
            return Files.exists(file) && Files.readString(file, StandardCharsets.UTF_8).equals(NftScript.script(ruleset));
        } catch (IOException e) {
            throw new EnforcementException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** True when the file holds a ruleset with any set or map element (a VM, an address, a rule). */
    @Override
    public boolean holdsRules() throws EnforcementException {
        try {
            return Files.exists(file) && Files.readString(file, StandardCharsets.UTF_8).contains("elements = {");
        } catch (IOException e) {
            throw new EnforcementException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    public Path file() {
        return file;
    }
}
