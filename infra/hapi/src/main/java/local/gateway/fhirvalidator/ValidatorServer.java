package local.gateway.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;

/**
 * HAPI FHIR's R4 instance validator as a long-running process: one FHIR R4 JSON resource per line on stdin,
 * one JSON line of issues per resource on stdout, in order.
 *
 * <p>Offline by construction: the R4 core StructureDefinitions, ValueSets and CodeSystems come from the jars
 * on the class path (hapi-fhir-validation-resources-r4); UCUM, BCP 47, MIME types and ISO codes from HAPI's
 * built-in terminology; no terminology server is configured, so code systems the jars do not hold (SNOMED CT,
 * ATC, AIC, the gateway's own) are reported by the validator as not checkable, never looked up; so are
 * profiles outside R4 core (IHE BALP), which are warnings, not errors.
 *
 * <p>The first output line is {@code {"ready":true,"startup_ms":N}}, after one warm-up validation, so the
 * caller knows the JVM start cost. Each later line is
 * {@code {"issues":[{"severity":"error","location":"Bundle.entry[0]...","message":"..."}]}}; a line that is not
 * JSON gets one {@code fatal} issue.
 */
public final class ValidatorServer {

  private ValidatorServer() {}

  public static void main(String[] args) throws Exception {
    long started = System.nanoTime();
    FhirContext context = FhirContext.forR4();
    ValidationSupportChain chain =
        new ValidationSupportChain(
            new DefaultProfileValidationSupport(context),
            new CommonCodeSystemsTerminologyService(context),
            new InMemoryTerminologyServerValidationSupport(context),
            new SnapshotGeneratingValidationSupport(context));
    FhirInstanceValidator module = new FhirInstanceValidator(chain);
    module.setAnyExtensionsAllowed(true);
    // Profiles outside FHIR R4 core (IHE BALP on the AuditEvents) are not on Maven Central and the package
    // registry is out of reach: their claim is reported as a warning ("has not been checked"), and the
    // resource is still validated against the R4 core definitions.
    module.setErrorForUnknownProfiles(false);
    module.setNoTerminologyChecks(false);
    FhirValidator validator = context.newValidator();
    validator.registerValidatorModule(module);

    validator.validateWithResult("{\"resourceType\":\"Basic\",\"code\":{\"text\":\"warm-up\"}}");

    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    long startupMs = (System.nanoTime() - started) / 1_000_000;
    out.println("{\"ready\":true,\"startup_ms\":" + startupMs + "}");
    out.flush();

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) {
        continue;
      }
      StringBuilder reply = new StringBuilder("{\"issues\":[");
      try {
        ValidationResult result = validator.validateWithResult(line);
        boolean first = true;
        for (SingleValidationMessage message : result.getMessages()) {
          if (!first) {
            reply.append(',');
          }
          first = false;
          appendIssue(reply, severity(message.getSeverity()), message.getLocationString(), message.getMessage());
        }
      } catch (RuntimeException exc) {
        appendIssue(reply, "fatal", "", exc.getClass().getSimpleName() + ": " + exc.getMessage());
      }
      reply.append("]}");
      out.println(reply);
      out.flush();
    }
  }

  private static String severity(ResultSeverityEnum severity) {
    return severity == null ? "error" : severity.getCode();
  }

  private static void appendIssue(StringBuilder reply, String severity, String location, String message) {
    reply.append("{\"severity\":");
    appendString(reply, severity);
    reply.append(",\"location\":");
    appendString(reply, location == null ? "" : location);
    reply.append(",\"message\":");
    appendString(reply, message == null ? "" : message);
    reply.append('}');
  }

  private static void appendString(StringBuilder reply, String value) {
    reply.append('"');
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      switch (c) {
        case '"' -> reply.append("\\\"");
        case '\\' -> reply.append("\\\\");
        case '\n' -> reply.append("\\n");
        case '\r' -> reply.append("\\r");
        case '\t' -> reply.append("\\t");
        default -> {
          if (c < 0x20) {
            reply.append(String.format("\\u%04x", (int) c));
          } else {
            reply.append(c);
          }
        }
      }
    }
    reply.append('"');
  }
}
